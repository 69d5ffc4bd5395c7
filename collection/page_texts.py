"""The texts the study's pages show from JavaScript (calibration, chat, tracker loading).

Kept apart from the views so that a view says what a page does and this says what it tells the
worker; translated once per request like every other string (``gettext``).
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def tracker_loading() -> dict[str, str]:
    """Progress texts while WebGazer's files load (``tracker_files.mjs``)."""
    return {
        "loading": _("Loading the eye tracker: %(pct)s %% (%(done)s of %(total)s MB)"),
        "ready": _("The eye tracker is loaded."),
        "starting": _("Starting the eye tracker and the camera…"),
    }


def calibration(clicks_per_point: int) -> dict[str, str]:
    """Texts of the calibration and validation page (``calibrate.mjs``)."""
    return {
        "clickDots": ngettext(
            "Look at each red dot and click it.", "Look at each red dot and click it %(n)s times.",
            clicks_per_point,
        ) % {"n": clicks_per_point},
        "pointLabel": _("Calibration point %(n)s"),
        "lookCentre": _("Now look at the blue dot. Do not move the mouse."),
        "followDot": _("Keep looking at the blue dot: it moves to a few other places, until the last one disappears."),
        "waitFace": _("Looking for your face…"),
        "noFace": _("No face found: face the camera, with light on your face"),
        "headOut": _("Move your head into the box"),
        "headOk": _("Face found"),
        "notCalibrated": _("Face found: now click the dots"),
        "failedNoFace": _(
            "The camera did not find your face for most of the time. Sit facing the camera, in front of a "
            "light rather than with a window behind you, with your whole face in the picture at the top left."
        ),
        "failedAccuracy": _(
            "Your face was found, but the accuracy is too low. Keep your head still, look at each dot while you "
            "click it, and follow the blue dot with your eyes until the last one disappears."
        ),
        "attemptsLeft": _("Attempts left: %(n)s."),
        "cameraFailed": _("The webcam could not be started. Allow camera access and try again."),
    }


def chat(*, pairwise: bool) -> dict[str, str]:
    """Texts of the chat page (``chat.mjs``)."""
    return {
        "progress": _("Rated questions: %(rated)s of at least %(min)s."),
        "secondsLeft": _("Please keep going for at least %(s)s more seconds."),
        "noQuestion": _("Ask your first question above."),
        "waiting": _("Waiting for the answer…"),
        "answering": _("The answer is being written…"),
        "pleaseRate": _("Please rate both answers below before asking the next question.")
        if pairwise else _("Please rate the answer below before asking the next question."),
        "rated": _("Thank you. Ask your next question, or finish when you are done."),
        "failed": _("An answer could not be loaded. Use “Try again”."),
        "typeQuestion": _("Please type a question."),
        "saving": _("Saving…"),
        "saved": _("Saved"),
        "savingRetry": _("Not saved yet (no connection): trying again…"),
        "busy": _("The server is busy; trying again…"),
        "question": _("Question"),
    }
