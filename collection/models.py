"""The data model of record: who took part, what they asked, what they saw and where they looked.

Both the public IFllm release and the site's own sessions land in these tables without loss:
release identifiers are kept (``release_*`` fields), values the importer had to normalise keep
their raw form in ``raw_overrides`` so an export reproduces the release, and everything the site
records beyond the release (assignment ids, validation details, provider errors, viewport and
box geometry of each sample) has a field of its own.

Trajectories are stored as compressed column blocks (:class:`TrajectoryChunk`); the reason is in
``collection/release/schema.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .release.schema import mode_of


class Platform(models.TextChoices):
    MTURK = "mturk", "Amazon Mechanical Turk"
    PROLIFIC = "prolific", "Prolific"
    LAB = "lab", _("Lab (invitation link)")
    RELEASE = "release", _("Imported from the IFllm release")


class Mode(models.TextChoices):
    POINTWISE = "pointwise", _("Pointwise (one answer)")
    PAIRWISE = "pairwise", _("Pairwise (two answers)")


class Worker(models.Model):
    """A person who takes part.

    ``platform_worker_id`` identifies the person on the crowd platform and must never leave the
    lab: exports use ``pseudonym`` (an HMAC of the platform id under a lab secret for site
    workers; the release's own anonymous id for imported ones).
    """

    pseudonym = models.CharField(max_length=64, unique=True)
    platform = models.CharField(max_length=16, choices=Platform.choices)
    platform_worker_id = models.CharField(
        max_length=128, blank=True, help_text=_("Private: never exported.")
    )
    consent = models.BooleanField(null=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    location = models.CharField(max_length=200, blank=True)
    education = models.CharField(max_length=100, blank=True)
    race = models.CharField(max_length=100, blank=True)
    gender = models.CharField(max_length=100, blank=True)
    blocked = models.BooleanField(default=False)
    is_preview = models.BooleanField(
        default=False, editable=False, db_index=True,
        help_text=_("A staff member walking the study (monitor's preview button): never counted in quotas, "
                    "monitor figures, QC, data selections or exports."),
    )
    created_at = models.DateTimeField(null=True, blank=True)
    raw_overrides = models.JSONField(default=dict, blank=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "platform_worker_id"],
                condition=~Q(platform_worker_id=""),
                name="unique_platform_worker",
            ),
        ]

    def __str__(self) -> str:
        return self.pseudonym


class Topic(models.Model):
    """A subject workers can choose to ask about (the paper used Wikipedia page titles)."""

    title = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class LLMProvider(models.TextChoices):
    OPENAI = "openai", _("OpenAI-compatible (OpenAI, DeepSeek, Together, vLLM, Ollama)")
    ANTHROPIC = "anthropic", "Anthropic"
    DEMO = "demo", _("Offline demo model")


class LLMModel(models.Model):
    """An entry of the model registry: which model answers, through which API."""

    name = models.CharField(max_length=100, unique=True, help_text=_("Shown to staff."))
    provider = models.CharField(max_length=16, choices=LLMProvider.choices)
    model_id = models.CharField(max_length=200)
    base_url = models.URLField(blank=True)
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text=_("Name of the environment variable with the key.")
    )
    max_tokens = models.PositiveIntegerField(default=500)
    # Two separate, explicit roles, both off by default: a model added as an evaluation judge
    # must never be served to crowd workers, and a chat model is not a judge unless staff say so.
    enabled = models.BooleanField(
        _("chat model for the study"),
        default=False,
        help_text=_("Served to crowd workers in the study chat."),
    )
    can_judge = models.BooleanField(
        _("judge"),
        default=False,
        help_text=_("Offered as the judge of alignment evaluations (never served to workers by this)."),
    )
    quota = models.PositiveIntegerField(
        default=40, help_text=_("Conversations this model may be assigned to.")
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "LLM model"

    def __str__(self) -> str:
        return self.name


class TaskQuerySet(models.QuerySet):
    """Task querysets with the one definition of which tasks count as study data."""

    def counted(self) -> TaskQuerySet:
        """Tasks that are study data: every task except those of preview workers (staff walking
        the study from the monitor). Quotas, the monitor, QC, data selections, exports, the
        release export and the feature pipelines all start from here, so a preview never counts."""
        return self.filter(worker__is_preview=False)

    def quota_live(self) -> TaskQuerySet:
        """Tasks that use up the mode and model quotas: counted, collected by the site (release
        imports excluded), not abandoned."""
        return self.counted().filter(release_task_id__isnull=True).exclude(status=Task.Status.ABANDONED)


class Task(models.Model):
    """One worker on one topic: the unit of a HIT/assignment and of quality control."""

    class Status(models.TextChoices):
        CHOSEN = "chosen", _("Topic chosen")
        CALIBRATING = "calibrating", _("Calibrating")
        CHATTING = "chatting", _("Chatting")
        POST_TASK = "post_task", _("Post-task questions")
        COMPLETED = "completed", _("Completed")
        ABANDONED = "abandoned", _("Abandoned")

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="tasks")
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="tasks")
    release_task_id = models.PositiveIntegerField(null=True, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, blank=True)
    model_1 = models.CharField(max_length=200, blank=True)
    model_2 = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CHOSEN)
    # Calibration: the paper's centre score (0-100); details of every attempt in the JSON.
    calibration_score = models.FloatField(null=True, blank=True)
    calibration = models.JSONField(default=dict, blank=True)
    validation = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    chat_started_at = models.DateTimeField(null=True, blank=True)
    chat_ended_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the worker finished the chat (QC's log-gap window ends here).")
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text=_("Last page of this task the worker opened (one of the signs of activity expiry reads)."),
    )
    gaze_rate_hz = models.FloatField(
        null=True, blank=True,
        help_text=_("Gaze samples per second the task achieved, measured on the server from its stored samples."),
    )
    mouse_rate_hz = models.FloatField(
        null=True, blank=True,
        help_text=_("Mouse samples per second the task achieved, measured on the server from its stored samples."),
    )
    # Post-task questionnaire
    summary = models.TextField(blank=True)
    understand_before = models.PositiveSmallIntegerField(null=True, blank=True)
    understand_after = models.PositiveSmallIntegerField(null=True, blank=True)
    copy_sentence = models.TextField(blank=True)
    feedback = models.TextField(blank=True)
    query_copy = models.TextField(blank=True)
    llm_response_copy = models.TextField(blank=True)
    # Crowd platform
    assignment_id = models.CharField(
        max_length=128, blank=True,
        help_text=_("MTurk assignment / Prolific SESSION_ID that started the task: only it may continue it."),
    )
    hit_id = models.CharField(max_length=128, blank=True)
    holder = models.CharField(
        max_length=64, blank=True, editable=False,
        help_text=_("Random id of the one browser session that works on this open task."),
    )
    completion_code = models.CharField(max_length=64, null=True, blank=True, unique=True)
    excluded = models.BooleanField(default=False, help_text=_("Left out of datasets."))
    # Set when the worker was let out after too many failed calibrations (the task is abandoned).
    calibration_failed_at = models.DateTimeField(null=True, blank=True)
    calibration_way_out = models.CharField(
        max_length=16, blank=True, help_text=_("The way out the worker was offered (study settings at the time).")
    )
    raw_overrides = models.JSONField(default=dict, blank=True)
    extra = models.JSONField(default=dict, blank=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "release_task_id"],
                condition=Q(release_task_id__isnull=False),
                name="unique_release_task",
            ),
        ]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["mode"])]

    def __str__(self) -> str:
        return f"{self.worker} / {self.topic}"

    @property
    def public_id(self) -> int:
        """The id exports and feature tables use: the release's task id, else the primary key."""
        return self.release_task_id if self.release_task_id is not None else self.pk

    @property
    def effective_mode(self) -> str:
        """``mode``, else what the models say: a task with a second model is pairwise.

        ``mode`` is blank only for release tasks without a trajectory folder (the folder names it).
        """
        return self.mode or mode_of(self.model_2)


class Turn(models.Model):
    """One query and the answer(s) shown for it, with the worker's ratings.

    Labels are explicit, never a bare 0/1 whose meaning depends on the reader:
    ``preferred`` (pairwise) names the response that won, ``better_than_previous`` (pointwise)
    says whether this answer beat the previous turn's.
    """

    class Side(models.IntegerChoices):
        RESPONSE_1 = 1, _("Response 1 (left)")
        RESPONSE_2 = 2, _("Response 2 (right)")

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveSmallIntegerField(help_text=_("Position within the task, from 0."))
    release_query_id = models.PositiveIntegerField(null=True, blank=True, unique=True)
    query = models.TextField()
    query_sent = models.TextField(
        blank=True, help_text=_("What the model(s) received, with any instruction suffix.")
    )
    bullet_instruction = models.BooleanField(default=False)
    model_1 = models.CharField(max_length=200, blank=True)
    model_2 = models.CharField(max_length=200, blank=True)
    response_1 = models.TextField(blank=True)
    response_2 = models.TextField(blank=True)
    # Provider failures are kept apart from answers and never become something to rate.
    error_1 = models.TextField(blank=True)
    error_2 = models.TextField(blank=True)
    # While a model call for a side runs: one call per side across processes (services.chat).
    answering_1 = models.DateTimeField(null=True, blank=True, editable=False)
    answering_2 = models.DateTimeField(null=True, blank=True, editable=False)
    likert_1 = models.PositiveSmallIntegerField(null=True, blank=True)
    likert_2 = models.PositiveSmallIntegerField(null=True, blank=True)
    preferred = models.PositiveSmallIntegerField(choices=Side.choices, null=True, blank=True)
    better_than_previous = models.BooleanField(null=True, blank=True)
    asked_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    # How the answer boxes looked when the worker rated them, so that the replay draws the text at
    # the size and font the box coordinates refer to (empty for the release and older turns).
    box_layout = models.JSONField(
        default=dict, blank=True,
        help_text=_('Per box ("1", "2"): width/height and client size (CSS px), font, line height, padding, border.'),
    )
    raw_overrides = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["task", "index"]
        constraints = [
            models.UniqueConstraint(fields=["task", "index"], name="unique_turn_index"),
            models.CheckConstraint(
                condition=Q(likert_1__isnull=True) | Q(likert_1__gte=1, likert_1__lte=5),
                name="likert_1_range",
            ),
            models.CheckConstraint(
                condition=Q(likert_2__isnull=True) | Q(likert_2__gte=1, likert_2__lte=5),
                name="likert_2_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}#{self.index}: {self.query[:40]}"

    @property
    def public_id(self) -> int:
        """The release's query id, else the primary key (``query_id`` in every export)."""
        return self.release_query_id if self.release_query_id is not None else self.pk

    @property
    def mode(self) -> str:
        """Pairwise when the turn showed two models' answers."""
        return mode_of(self.model_2)


class TrajectoryChunk(models.Model):
    """A block of gaze/mouse samples of one task (see ``collection/release/schema.py``).

    Imported tasks have one chunk per release file; site tasks one per delivered batch, where
    ``seq`` is the batch number the browser gave it: the unique (task, seq) pair is what makes a
    re-sent batch harmless.  ``streams`` holds per-stream counts and time spans so the admin
    and QC summaries never decode the payload.
    """

    class Source(models.TextChoices):
        RELEASE = "release", _("Release import")
        SITE = "site", _("Collected by this site")

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="chunks")
    seq = models.IntegerField()
    source = models.CharField(max_length=16, choices=Source.choices)
    n_samples = models.PositiveIntegerField()
    first_ms = models.BigIntegerField(null=True)
    last_ms = models.BigIntegerField(null=True)
    streams = models.JSONField(default=dict)
    data = models.BinaryField()
    digest = models.CharField(max_length=64, blank=True, help_text=_("SHA-256 of the batch."))
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["task", "seq"], name="unique_chunk_seq"),
        ]

    def __str__(self) -> str:
        return f"task {self.task_id} chunk {self.seq} ({self.n_samples} samples)"


class ImportRun(models.Model):
    """What one ``import_ifllm`` run loaded and skipped (and why), for the staff to read."""

    path = models.CharField(max_length=500)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    summary = models.JSONField(default=dict, blank=True)
    problems = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"import {self.path} @ {self.started_at:%Y-%m-%d %H:%M}"


# --- Study site (worker-facing collection) ------------------------------------------------------


class CalibrationWayOut(models.TextChoices):
    """What a worker is offered when the eye tracker cannot be calibrated for them."""

    RETURN = "return", _("Return the HIT / submission (no payment)")
    CODE = "code", _("A partial-payment completion code")
    CONTACT = "contact", _("Contact the researchers")


class StudySettings(models.Model):
    """Staff-set knobs of the live study; one row (pk=1), read through ``study_settings_get``.

    A singleton rather than Django settings so that staff change thresholds in the admin without
    a deploy, and so that every value that shaped a task can be copied onto it when it starts.
    """

    topic_pool_size = models.PositiveSmallIntegerField(
        default=30, help_text=_("Topics offered to a worker (shuffled).")
    )
    max_topics_per_entry = models.PositiveSmallIntegerField(
        default=3, help_text=_("Topics a worker may choose at once.")
    )
    pointwise_quota = models.PositiveIntegerField(
        default=100, help_text=_("Pointwise tasks wanted in total (0 disables the mode).")
    )
    pairwise_quota = models.PositiveIntegerField(
        default=100, help_text=_("Pairwise tasks wanted in total (0 disables the mode).")
    )
    bullet_probability = models.FloatField(
        default=0.5, help_text=_("Probability that a turn's query gets the bullet-point instruction.")
    )
    bullet_suffix = models.CharField(
        max_length=300, default=" Please answer using bullet points.",
        help_text=_("Appended to the query sent to the model(s) when the instruction is drawn."),
    )
    min_turns = models.PositiveSmallIntegerField(default=3)
    min_seconds = models.PositiveIntegerField(default=240, help_text=_("Minimum chat time before finishing."))
    sample_interval_ms = models.PositiveIntegerField(default=100, help_text=_("Gaze/mouse sampling clock."))
    batch_interval_ms = models.PositiveIntegerField(
        default=5000, help_text=_("How often the browser sends queued samples.")
    )
    idle_timeout_s = models.PositiveIntegerField(default=1800, help_text=_("Idle time that ends a session."))
    pass_threshold = models.FloatField(
        default=70.0,
        help_text=_(
            "The paper's centre score (0-100) it compared with: recorded with each attempt for comparison. "
            "It does not decide: a still face scores 83-97 (its prediction sits at the centre)."
        ),
    )
    validation_radius_px = models.PositiveIntegerField(
        default=100, help_text=_("Radius for the per-point share of samples near the target.")
    )
    # The pass rule (collection.gaze_quality.ValidationRule): every validation target must pass.
    validation_max_distance_px = models.FloatField(
        default=200.0, validators=[MinValueValidator(1)],
        help_text=_(
            "Accuracy: the largest mean distance (CSS px) of the predictions from EACH validation target. "
            "200 px is about 5 degrees at 60 cm on a laptop; a tracker frozen at the centre is 300 px or more "
            "from the corner targets at 1024x768 and larger screens."
        ),
    )
    validation_max_spread_px = models.FloatField(
        default=250.0, validators=[MinValueValidator(1)],
        help_text=_("Precision: the largest RMS distance of a target's predictions from their own mean (CSS px)."),
    )
    validation_min_prediction_share = models.FloatField(
        default=0.5, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("Data loss: the smallest share of the tracker's frames with a prediction, at each target."),
    )
    webgazer_learn_during_task = models.BooleanField(
        default=False,
        help_text=_(
            "Let WebGazer keep learning from mouse clicks and moves during the chat. Off by default: "
            "learning from the mouse couples the gaze signal to the mouse signal."
        ),
    )
    prolific_completion_url = models.URLField(
        blank=True, help_text=_("Where Prolific workers are sent at the end (e.g. ...?cc=CODE).")
    )
    task_description = models.TextField(
        blank=True, help_text=_("Shown in the MTurk preview and on the start page.")
    )
    researcher_contact = models.TextField(
        blank=True, help_text=_("Who runs the study and how to reach them (shown on the consent page).")
    )
    payment_info = models.TextField(
        blank=True, help_text=_("What the worker is paid, and for what (shown on the consent page).")
    )
    calibration_clicks_per_point = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_(
            "Clicks on each of the 9 calibration dots. Each click gives WebGazer one training example; "
            "5 is WebGazer's own demo. Fewer make calibration quicker and less accurate."
        ),
    )
    max_calibration_attempts = models.PositiveSmallIntegerField(
        default=3,
        help_text=_("Failed calibration attempts after which the worker is offered the way out (0: never)."),
    )
    calibration_way_out = models.CharField(
        max_length=16, choices=CalibrationWayOut.choices, default=CalibrationWayOut.RETURN,
        help_text=_("What a worker whose eye tracker cannot be calibrated is offered."),
    )
    partial_payment_code = models.CharField(
        max_length=64, blank=True,
        help_text=_("Code a worker enters on the platform for the partial payment (way out 'code')."),
    )
    keep_webgazer_data = models.BooleanField(
        default=False,
        help_text=_(
            "Keep WebGazer's calibration in the browser between tasks and visits. Off by default: on a "
            "shared computer the next person would inherit it, and the stored data slows long sessions."
        ),
    )
    open_task_expire_s = models.PositiveIntegerField(
        default=7200,
        help_text=_(
            "An open task with no activity for this long (page views, calibration, questions, ratings, "
            "gaze/mouse data) is abandoned and stops counting against the quotas; 0: never. Keep it "
            "above the idle timeout and the platform's time limit (a worker may come back within them)."
        ),
    )
    lab_typed_ids = models.BooleanField(
        default=False,
        help_text=_(
            "Let lab participants start by typing an id instead of an invitation link. Off by default: "
            "anyone who knows or guesses an id can then act as that participant."
        ),
    )

    class Meta:
        verbose_name = _("study settings")
        verbose_name_plural = _("study settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(bullet_probability__gte=0) & Q(bullet_probability__lte=1),
                name="bullet_probability_range",
            ),
            models.CheckConstraint(condition=Q(sample_interval_ms__gte=10), name="sample_interval_min"),
        ]

    def __str__(self) -> str:
        return "Study settings"


class CalibrationAttempt(models.Model):
    """One calibration or validation run of WebGazer for a task; every attempt is kept.

    ``passed`` is the per-target rule (``collection.gaze_quality.validation_verdict``) with the
    thresholds in ``rule`` as they were at the time; ``points`` holds each target's metrics and
    checks. ``score`` is the paper's centre score, kept as a figure, and ``threshold`` the centre
    score the paper compared it with (``rule["centre_score_passed"]``): neither decides.
    """

    class Kind(models.TextChoices):
        CALIBRATION = "calibration", _("Calibration and validation")
        REVALIDATION = "revalidation", _("Short validation before a further topic")

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="calibration_attempts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    score = models.FloatField()
    threshold = models.FloatField()
    passed = models.BooleanField()
    viewport_w = models.PositiveIntegerField()
    viewport_h = models.PositiveIntegerField()
    n_clicks = models.PositiveIntegerField(default=0)
    head_in_box_share = models.FloatField(null=True, blank=True)
    face_found_share = models.FloatField(
        null=True, blank=True, help_text=_("Share of the attempt during which WebGazer's face mesh found a face.")
    )
    points = models.JSONField(default=list, help_text=_("Per validation point: target, metrics, checks."))
    rule = models.JSONField(
        default=dict, blank=True,
        help_text=_("The pass rule applied: its name, thresholds, the failed checks and the centre score's verdict."),
    )
    raw = models.JSONField(default=dict, help_text=_("Clicks and predictions as sent by the browser."))
    # Kept apart from the scoring fields: what the eye-tracking report needs to turn pixels into
    # degrees and to name the tracker (crowd/eyetracking.py); empty on attempts stored before it.
    environment = models.JSONField(
        default=dict, blank=True,
        help_text=_("Screen size (CSS px) and device pixel ratio, camera resolution as the page reported "
                    "them; WebGazer and MediaPipe versions the site served."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "created_at"]

    def __str__(self) -> str:
        return f"task {self.task_id} {self.kind} {self.score:.1f} ({'pass' if self.passed else 'fail'})"


# --- Identity: invitations and the audit of entries ------------------------------------------


class Invitation(models.Model):
    """A one-time link with which a lab participant (created by staff) enters the study.

    The token is random (``secrets.token_urlsafe``) and worthless once used; a participant who
    lost their browser session gets a new invitation, which continues their open task.
    """

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="invitations")
    token = models.CharField(max_length=64, unique=True, editable=False)
    note = models.CharField(max_length=200, blank=True, help_text=_("For staff, e.g. the session slot."))
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text=_("Empty: does not expire."))
    used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"invitation for {self.worker} ({'used' if self.used_at else 'open'})"


class IdentityEvent(models.Model):
    """An entry or a session change that touched who works on what, kept for staff to audit.

    Repeats of the same event (same kind, worker, task, assignment) add to ``count`` rather than
    to the table, so a script hammering the entry page cannot flood it.
    """

    class Kind(models.TextChoices):
        OTHER_ASSIGNMENT = "other_assignment", _("Entry with another assignment while a task is open")
        TAKEOVER = "takeover", _("Task continued in another browser session")
        SESSION_REFUSED = "session_refused", _("Second browser session refused")
        INVITATION_USED = "invitation_used", _("Invitation used")
        INVITATION_REUSED = "invitation_reused", _("Used or expired invitation tried again")
        TYPED_ENTRY = "typed_entry", _("Lab entry with a typed id")
        NEW_ASSIGNMENT = "new_assignment", _("Known worker id with a new, unverified assignment")
        ASSIGNMENT_VERIFIED = "assignment_verified", _("Assignment verified with the platform")
        ASSIGNMENT_REFUSED = "assignment_refused", _("Entry refused (malformed, not the participant's, too many)")

    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    worker = models.ForeignKey(Worker, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    platform = models.CharField(max_length=16, choices=Platform.choices, blank=True)
    assignment_id = models.CharField(max_length=128, blank=True, help_text=_("The assignment that came in."))
    hit_id = models.CharField(max_length=128, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    count = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.worker})"


class DataSelection(models.Model):
    """A named, versioned, frozen set of tasks: the one definition of clean data.

    Staff make one from the QC pages (``crowd.services.data_selection_create``): the QC
    thresholds, the manual exclusions and the "keep anyway" decisions of that moment are applied
    to every task's QC figures by the pure :func:`crowd.selection.evaluate`, and the tasks kept
    are frozen in ``task_ids`` beside the ``rules`` that chose them and, per task left out, why
    (``left_out``). Reward runs, leaderboards, preference datasets and exports take a selection
    and record it, so each says which tasks it used. It lives here, with the data of record, so
    that every app can point at it (imported release tasks are selectable like the site's own).

    A selection never changes once created: a change of rules is a new version of the same name.
    """

    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    rules = models.JSONField(default=dict, help_text=_("Thresholds, manual exclusions and kept overrides."))
    task_ids = models.JSONField(default=list, help_text=_("Primary keys of the tasks kept (frozen)."))
    left_out = models.JSONField(
        default=list, blank=True, help_text=_("Per task left out: task, worker, public task id and reason codes.")
    )
    summary = models.JSONField(default=dict, blank=True, help_text=_("Counts per reason (crowd.selection.summarise)."))
    n_candidates = models.PositiveIntegerField(default=0)
    n_kept = models.PositiveIntegerField(default=0)
    n_left_out = models.PositiveIntegerField(default=0)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="unique_selection_version")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.n_kept} of {self.n_candidates} tasks)"

    def save(self, *args, **kwargs) -> None:
        """Refuse to change a stored selection: runs that used it must keep meaning the same tasks."""
        if self.pk is not None and not self._state.adding:
            raise ValueError(f"data selection {self.pk} is frozen: create a new version instead")
        super().save(*args, **kwargs)

    def tasks(self) -> models.QuerySet[Task]:
        """The tasks kept, as a queryset (whatever their ``excluded`` flag says now; never a preview)."""
        return Task.objects.counted().filter(pk__in=self.task_ids)

    def tasks_gone(self) -> set[int]:
        """Task ids the selection names (kept or left out) whose task no longer exists: deleted by
        a participant's withdrawal. The selection stays frozen (its ids are what runs on it meant);
        :meth:`tasks` skips them, and pages say "withdrawn — deleted" instead of linking them."""
        named = {int(t) for t in self.task_ids or []}
        named |= {int(r["task"]) for r in self.left_out or [] if r.get("task") is not None}
        if not named:
            return set()
        return named - set(Task.objects.filter(pk__in=named).values_list("pk", flat=True))

    def n_kept_gone(self) -> int:
        """How many of the kept tasks a withdrawal deleted (``n_kept`` minus what :meth:`tasks` finds)."""
        return len(self.tasks_gone() & {int(t) for t in self.task_ids or []})

    def record(self) -> dict:
        """What a run, a leaderboard, a dataset or an export stores about the selection it used
        (``n_withdrawn``: kept tasks a withdrawal had deleted by then, so not used)."""
        return {"id": self.pk, "name": self.name, "version": self.version, "rules": self.rules,
                "n_kept": self.n_kept, "n_withdrawn": self.n_kept_gone(), "n_candidates": self.n_candidates,
                "n_left_out": self.n_left_out,
                "by_reason": (self.summary or {}).get("by_reason", {}),
                "rules_text": (self.summary or {}).get("rules_text", [])}


# --- Withdrawal: the audit of a participant's withdrawal and what it touched --------------------


class Withdrawal(models.Model):
    """One participant's withdrawal: when, through which channel, by whom, and what it deleted.

    It holds no personal data on purpose (no pseudonym, no platform id, no free text): the audit
    must outlive the data it records the deletion of. ``subject_key`` is a one-way HMAC of
    ``platform:platform id`` under the lab secret, in a domain of its own (``withdrawal:``) so that
    it equals no pseudonym in any export; it serves only to refuse a re-entry with the same
    platform id (``collection.services.study.worker_get_or_create``), which the person asked for
    by withdrawing. Without the lab key it cannot be reversed or matched; with it, it can only
    confirm a guessed id. The counts are numbers of rows and files, nothing else.

    Done by ``crowd.services.withdrawal.participant_withdraw`` (the one place that knows every app).
    """

    class Channel(models.TextChoices):
        STAFF_PAGE = "staff_page", _("Staff worker page")
        ADMIN = "admin", _("Admin action")
        WORKER = "worker", _("The participant, from their own session")
        COMMAND = "command", _("Management command")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    acted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text=_("The staff user who withdrew the participant (empty: the participant or a command)."),
    )
    platform = models.CharField(max_length=16, choices=Platform.choices, blank=True)
    subject_key = models.CharField(
        max_length=64, blank=True, db_index=True, editable=False,
        help_text=_("One-way keyed hash of the platform id: refuses a re-entry, identifies no one."),
    )
    counts = models.JSONField(default=dict, blank=True, help_text=_("Rows and files deleted, per kind."))

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("withdraw_participant", _("Can withdraw a participant (deletes their data everywhere)")),
        ]

    def __str__(self) -> str:
        return f"withdrawal #{self.pk} on {self.created_at:%Y-%m-%d}" if self.created_at else "withdrawal"


class AffectedArtifact(models.Model):
    """A result built from a withdrawn participant's data, marked before the data was deleted.

    Generic (app label, model, object id) rather than foreign keys: the row must survive the
    artifact's own deletion, and ``collection`` may not import the apps that own the artifacts.
    ``rebuilt_as`` names what the rebuild made (``app_label.model:pk`` or ``jobs.job:pk``).
    """

    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.CASCADE, related_name="affected")
    app_label = models.CharField(max_length=50)
    model_name = models.CharField(max_length=50)
    object_id = models.PositiveBigIntegerField()
    label = models.CharField(max_length=300, blank=True)
    reason = models.CharField(max_length=300, blank=True, help_text=_("Why it counts as built from their data."))
    rebuilt_at = models.DateTimeField(null=True, blank=True)
    rebuilt_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rebuilt_as = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["withdrawal", "app_label", "model_name", "object_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["withdrawal", "app_label", "model_name", "object_id"], name="unique_affected_artifact"
            ),
        ]
        indexes = [models.Index(fields=["app_label", "model_name", "object_id"])]

    def __str__(self) -> str:
        return f"{self.app_label}.{self.model_name} #{self.object_id} ({self.label})"

    @property
    def key(self) -> str:
        return f"{self.app_label}.{self.model_name}"
