"""Crowd studies, their platform records, quality control and payments.

Everything a platform said is mirrored here (HITs, assignments, bonuses) so that staff review
without calling the platform, and every call to a platform is kept in :class:`AuditLog`, with its
answer, whether it succeeded or not. The data of record (workers, tasks, turns) stays in
``collection``; this app points at it.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from collection.models import Task, Worker


class Environment(models.TextChoices):
    SANDBOX = "sandbox", _("Sandbox (no money)")
    PRODUCTION = "production", _("Production (real payments)")


class Study(models.Model):
    """One recruitment campaign on one platform, with its payment and quality-control settings.

    QC thresholds left empty are not applied. The paper's two filters are the response score
    (share of on-text gaze on the answers' text, 0.75) and the max-index score (share of the
    answer read, 0.3), defined in ``analysis.features.quality``; calibration above 70 was the
    entry condition.
    """

    class Platform(models.TextChoices):
        MTURK = "mturk", "Amazon Mechanical Turk"
        PROLIFIC = "prolific", "Prolific"
        LAB = "lab", _("Lab")

    name = models.CharField(max_length=200, unique=True)
    platform = models.CharField(max_length=16, choices=Platform.choices, default=Platform.MTURK)
    environment = models.CharField(
        max_length=16,
        choices=Environment.choices,
        default=Environment.SANDBOX,
        help_text=_("MTurk: sandbox or production endpoint. New studies start in the sandbox."),
    )
    active = models.BooleanField(default=True)
    # What workers see on the platform
    title = models.CharField(max_length=128, default="Chat with AI models while we track your gaze")
    description = models.TextField(
        max_length=2000,
        default="Ask an AI model questions about a topic and rate its answers; needs a webcam.",
    )
    keywords = models.CharField(max_length=200, blank=True, default="chat, AI, eye tracking, survey")
    external_url = models.URLField(
        blank=True, help_text=_("HTTPS entry page of the site (MTurk ExternalQuestion URL).")
    )
    frame_height = models.PositiveIntegerField(default=0, help_text=_("0 = full height (MTurk)."))
    # Payment and timing
    reward = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal("2.00"), validators=[MinValueValidator(Decimal("0.01"))]
    )
    assignment_duration_s = models.PositiveIntegerField(default=3600)
    lifetime_s = models.PositiveIntegerField(default=7 * 24 * 3600)
    max_assignments = models.PositiveIntegerField(default=9, validators=[MinValueValidator(1)])
    auto_approval_delay_s = models.PositiveIntegerField(default=3 * 24 * 3600)
    # MTurk qualifications
    require_masters = models.BooleanField(default=True)
    min_percent_approved = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100)], help_text=_("Empty: not required.")
    )
    min_hits_approved = models.PositiveIntegerField(null=True, blank=True, help_text=_("Empty: not required."))
    locales = models.CharField(
        max_length=200, blank=True, help_text=_("ISO country codes separated by commas, e.g. 'US,CA'.")
    )
    block_retakes = models.BooleanField(
        default=True, help_text=_("Grant a qualification on completion and exclude workers who have it.")
    )
    retake_qualification_id = models.CharField(max_length=64, blank=True)
    # Prolific
    prolific_study_id = models.CharField(max_length=64, blank=True)
    prolific_completion_codes = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Completion code -> "approve" or "review", e.g. {"C1A2B3": "approve"}. The three codes '
                    "below are added to it when the study is saved."),
    )
    code_completed = models.CharField(
        max_length=64, blank=True, help_text=_("Prolific completion code for a finished study (approve)."))
    code_screened_out = models.CharField(
        max_length=64, blank=True,
        help_text=_("Prolific code after a failed calibration, when the way out is 'code' (screened out; review)."))
    code_partial = models.CharField(
        max_length=64, blank=True,
        help_text=_("Prolific code for partial payment: calibration failed after at least one finished topic "
                    "(review)."))
    estimated_minutes = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text=_("Prolific: estimated completion time."))
    devices = models.CharField(
        max_length=64, default="desktop",
        help_text=_("Prolific device compatibility, comma-separated among desktop, tablet, mobile."))
    require_webcam = models.BooleanField(default=True, help_text=_("Prolific: require a camera (eye tracking)."))
    prolific_status = models.CharField(max_length=32, blank=True, help_text=_("As Prolific last reported it."))
    prolific_published_at = models.DateTimeField(null=True, blank=True)
    prolific_synced_at = models.DateTimeField(null=True, blank=True)
    # Quality-control thresholds (empty = not applied)
    min_calibration_score = models.FloatField(null=True, blank=True, default=70.0)
    min_response_score = models.FloatField(null=True, blank=True, default=0.75)
    min_max_index_score = models.FloatField(null=True, blank=True, default=0.3)
    min_sampling_rate_hz = models.FloatField(null=True, blank=True, default=3.0)
    min_head_in_box_share = models.FloatField(null=True, blank=True)
    min_time_on_task_s = models.FloatField(null=True, blank=True, default=240.0)
    max_log_gap_s = models.FloatField(null=True, blank=True, default=30.0)
    min_summary_words = models.FloatField(null=True, blank=True, default=5.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = _("studies")
        permissions = [
            ("pay_workers", _("Can approve, reject, bonus and block workers (spends money)")),
            ("review_task", _("Can exclude tasks from the dataset and recompute QC")),
        ]

    def __str__(self) -> str:
        if self.platform != self.Platform.MTURK:  # the environment is MTurk's sandbox/production
            return f"{self.name} ({self.get_platform_display()})"
        return f"{self.name} ({self.get_platform_display()}, {self.environment})"

    def save(self, *args, **kwargs) -> None:
        """Keep ``prolific_completion_codes`` (what submission matching reads) consistent with
        the three codes: completed approves, the other two need review."""
        codes = dict(self.prolific_completion_codes or {})
        for purpose, code in self.prolific_codes().items():
            codes[code] = "approve" if purpose == "completed" else "review"
        self.prolific_completion_codes = codes
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = list({*kwargs["update_fields"], "prolific_completion_codes"})
        super().save(*args, **kwargs)

    def prolific_codes(self) -> dict[str, str]:
        """The three Prolific codes by purpose (empty ones left out)."""
        found = {"completed": self.code_completed, "screened_out": self.code_screened_out,
                 "partial": self.code_partial}
        return {k: v.strip() for k, v in found.items() if v and v.strip()}

    def thresholds(self) -> dict[str, float | None]:
        """The QC thresholds as the pure module's keyword mapping."""
        from .qc import THRESHOLD_NAMES

        return {name: getattr(self, name) for name in THRESHOLD_NAMES}


class HIT(models.Model):
    """A HIT created for a study. The row exists before the call so its token survives a retry."""

    class Status(models.TextChoices):
        CREATING = "creating", _("Being created")
        ASSIGNABLE = "Assignable", _("Assignable")
        UNASSIGNABLE = "Unassignable", _("Unassignable")
        REVIEWABLE = "Reviewable", _("Reviewable")
        REVIEWING = "Reviewing", _("Reviewing")
        DISPOSED = "Disposed", _("Disposed")
        FAILED = "failed", _("Creation failed")

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="hits")
    environment = models.CharField(max_length=16, choices=Environment.choices)
    hit_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    hit_type_id = models.CharField(max_length=64, blank=True)
    unique_request_token = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CREATING)
    max_assignments = models.PositiveIntegerField()
    reward = models.DecimalField(max_digits=6, decimal_places=2)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = "HIT"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.hit_id or f"HIT (pending, token {self.unique_request_token[:12]})"


class Assignment(models.Model):
    """One submission on a platform (an MTurk assignment or a Prolific submission).

    Matched to the task it claims to be; ``flags`` lists what does not add up (no task, task not
    completed, wrong code, another worker), and such submissions are held for review.
    """

    class Status(models.TextChoices):
        SUBMITTED = "Submitted", _("Submitted")
        APPROVED = "Approved", _("Approved")
        REJECTED = "Rejected", _("Rejected")
        REVIEW = "review", _("Needs manual review")
        # Prolific only: still working, returned, timed out, screened out.
        ACTIVE = "active", _("Active (not submitted yet)")
        RETURNED = "returned", _("Returned")
        TIMED_OUT = "timed_out", _("Timed out")
        SCREENED_OUT = "screened_out", _("Screened out")

    class Flag(models.TextChoices):
        NO_TASK = "no_task", _("No matching task")
        NOT_COMPLETED = "not_completed", _("Task not completed")
        CODE_MISMATCH = "code_mismatch", _("Completion code does not match")
        WORKER_MISMATCH = "worker_mismatch", _("Task belongs to another worker")
        UNKNOWN_CODE = "unknown_code", _("Completion code not in the study's list")
        WITHDRAWN = "withdrawn", _("Participant withdrew: their data was deleted (this payment record is kept)")

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="assignments")
    hit = models.ForeignKey(HIT, null=True, blank=True, on_delete=models.PROTECT, related_name="assignments")
    platform = models.CharField(max_length=16, choices=Study.Platform.choices)
    assignment_id = models.CharField(max_length=128)
    platform_worker_id = models.CharField(max_length=128, help_text=_("Private: never exported."))
    worker = models.ForeignKey(Worker, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUBMITTED)
    completion_code = models.CharField(max_length=64, blank=True)
    answer = models.JSONField(default=dict, blank=True, help_text=_("Fields the worker submitted."))
    flags = models.JSONField(default=list, blank=True)
    flagged = models.BooleanField(default=False, db_index=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requester_feedback = models.TextField(blank=True)
    platform_status = models.CharField(max_length=32, blank=True, help_text=_("Prolific's status, as synced."))
    rejection_category = models.CharField(max_length=32, blank=True)
    return_requested_at = models.DateTimeField(null=True, blank=True)
    qualification_granted = models.BooleanField(default=False)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "assignment_id"], name="unique_platform_assignment"),
        ]

    def __str__(self) -> str:
        return f"{self.platform} {self.assignment_id}"


class Payment(models.Model):
    """A bonus (or other extra payment) to one assignment's worker.

    ``key`` names the purpose; (assignment, key) is unique, so paying the same purpose twice
    reuses the row and its ``unique_request_token``: the platform then refuses a second payment.

    Prolific pays in two calls and the second is not idempotent, so each step is recorded:
    ``pending`` -> ``created`` (the bulk bonus payment exists: ``platform_batch_id``) ->
    ``paying`` (the pay call was recorded as sent *before* it was sent) -> ``paid``. A row left
    ``paying`` (answer lost) is never paid again by the site: staff check on Prolific and confirm.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        CREATED = "created", _("Created on Prolific, not paid")
        PAYING = "paying", _("Pay sent, answer not received: check on Prolific")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed (retry pays with the same token)")

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="payments")
    key = models.CharField(max_length=64, default="bonus")
    amount = models.DecimalField(max_digits=6, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))])
    reason = models.TextField()
    unique_request_token = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    platform_batch_id = models.CharField(
        max_length=64, blank=True, help_text=_("Prolific: the bulk bonus payment this row created (and pays)."))
    batch_created_at = models.DateTimeField(null=True, blank=True)
    pay_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "key"], name="unique_payment_purpose"),
        ]

    def __str__(self) -> str:
        return f"${self.amount} to {self.assignment} ({self.status})"


class AuditLog(models.Model):
    """One call to a crowd platform, with its parameters and the answer (or the error)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    platform = models.CharField(max_length=16, choices=Study.Platform.choices)
    environment = models.CharField(max_length=16, choices=Environment.choices, blank=True)
    operation = models.CharField(max_length=64)
    request = models.JSONField(default=dict)
    response = models.JSONField(null=True, blank=True)
    ok = models.BooleanField()
    error = models.TextField(blank=True)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.operation} {'ok' if self.ok else 'FAILED'} @ {self.created_at:%Y-%m-%d %H:%M:%S}"


class TaskQC(models.Model):
    """Quality-control figures of one task, the thresholds they were judged against, and why it
    was flagged. ``flags`` is ``",code,code,"`` so the admin can filter by one flag on any
    database; ``reasons`` holds the human sentences."""

    class Decision(models.TextChoices):
        NONE = "", _("Not reviewed")
        KEEP = "keep", _("Keep in the dataset")
        EXCLUDE = "exclude", _("Exclude from the dataset")

    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="qc")
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="qcs")
    computed_at = models.DateTimeField(auto_now=True)
    calibration_score = models.FloatField(null=True, blank=True)
    validation_passed = models.BooleanField(null=True, blank=True)
    response_score = models.FloatField(null=True, blank=True)
    max_index_score = models.FloatField(null=True, blank=True)
    n_gaze_samples = models.PositiveIntegerField(default=0)
    n_mouse_samples = models.PositiveIntegerField(default=0)
    sampling_rate_hz = models.FloatField(null=True, blank=True)
    median_interval_ms = models.FloatField(null=True, blank=True)
    head_in_box_share = models.FloatField(null=True, blank=True)
    time_on_task_s = models.FloatField(null=True, blank=True)
    max_log_gap_s = models.FloatField(null=True, blank=True)
    total_gap_s = models.FloatField(null=True, blank=True)
    n_gaps = models.PositiveIntegerField(default=0)
    summary_words = models.PositiveIntegerField(default=0)
    n_turns = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True, help_text=_("Every figure, incl. matching report."))
    thresholds = models.JSONField(default=dict, blank=True)
    flagged = models.BooleanField(default=False, db_index=True)
    flags = models.CharField(max_length=300, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    decision = models.CharField(max_length=16, choices=Decision.choices, blank=True, default="")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        verbose_name = "task QC"
        verbose_name_plural = "task QC"
        ordering = ["-computed_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(response_score__isnull=True) | Q(response_score__gte=0, response_score__lte=1),
                name="qc_response_score_range",
            ),
        ]

    def __str__(self) -> str:
        return f"QC of task {self.task_id}{' (flagged)' if self.flagged else ''}"

    def flag_codes(self) -> list[str]:
        return [c for c in self.flags.split(",") if c]


class ReviewCall(models.Model):
    """One reviewer's current call on one task, made in the review queue (``/crowd/review/<id>/``).

    Each reviewer has one call per task (changing it updates the row); every reviewer's call is
    kept, so two reviewers' agreement can be measured (:mod:`crowd.review_agreement`). How the
    calls change the task's decision (``TaskQC.decision``, ``Task.excluded``) is
    :func:`crowd.services.review.review_call_save`: agreeing keep/exclude calls apply through
    ``task_keep``/``task_exclude``; disagreeing ones leave the task "disputed" with the decision
    it had; a flag decides nothing.
    """

    class Call(models.TextChoices):
        KEEP = "keep", _("Keep")
        EXCLUDE = "exclude", _("Exclude")
        FLAG = "flag", _("Flag (needs another look)")

    class Reason(models.TextChoices):
        """Why a task is excluded (or flagged); the order is the keyboard's 1-6."""

        NOT_READING = "not_reading", _("Not reading the answers")
        CALIBRATION_DRIFT = "calibration_drift", _("Calibration drift")
        OFF_TASK = "off_task", _("Off-task chat")
        COPIED_SUMMARY = "copied_summary", _("Copied summary")
        TECHNICAL = "technical", _("Technical problem")
        OTHER = "other", _("Other (see note)")

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="review_calls")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    call = models.CharField(max_length=16, choices=Call.choices)
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)
    note = models.TextField(blank=True)
    selection = models.ForeignKey(
        "collection.DataSelection", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text=_("The queue the call was made in."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["task", "reviewer"], name="unique_review_call_per_reviewer"),
            models.CheckConstraint(
                condition=~Q(call="exclude") | ~Q(reason=""), name="review_call_exclude_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} on task {self.task_id}: {self.call}{f' ({self.reason})' if self.reason else ''}"
