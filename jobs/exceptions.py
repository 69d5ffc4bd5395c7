"""Errors raised by the job system."""


class JobError(Exception):
    """Base class of the job system's errors."""


class JobCancelled(JobError):
    """Raised inside a running job when its row was cancelled; the runner marks it CANCELLED."""


class JobStateError(JobError):
    """The job is not in a state that allows the requested operation."""


class UnknownJobKind(JobError):
    """No task is registered under this kind (is the app's ``tasks`` module imported?)."""
