"""Results of analysis jobs: reward-model runs with their out-of-fold predictions, and figures.

The computation lives in the pure packages (``analysis.matching``, ``analysis.features``,
``analysis.reward``, ``analysis.plots``); these models only keep what a job produced so staff can
read it in the admin and the alignment jobs can consume it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RewardModelRun(models.Model):
    """One evaluation of the reward models on the data in the database (paper Table 2): every run
    computes both settings (pairwise and pointwise), so a run has no setting of its own."""

    name = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    data_version = models.CharField(max_length=64, blank=True)
    n_samples = models.PositiveIntegerField(default=0, help_text=_("Labelled pairs or turns."))
    results = models.JSONField(default=list, blank=True, help_text=_("One row per model × protocol."))
    table_text = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=dict, blank=True, help_text=_("Matching and filtering counts."))
    selection = models.ForeignKey(
        "collection.DataSelection", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("The tasks the run uses. Empty: every task not excluded by staff, with the paper's "
                    "quality filter if on."),
    )

    #: A re-run of its job from the Jobs list moves this row to the new job (jobs.services.job_rerun).
    job_follows_reruns = True

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"reward models #{self.pk}"


class RewardPrediction(models.Model):
    """Out-of-fold prediction for one labelled pair: what the alignment jobs train on.

    ``prob_1`` is P(response 1 preferred); ``p_winner`` the probability of the predicted winner
    (never P(class 1): the paper's original pipeline used P(class 1) as every pair's confidence,
which gave every pair predicted "2" the maximum flip rate).
    """

    run = models.ForeignKey(RewardModelRun, on_delete=models.CASCADE, related_name="predictions")
    turn = models.ForeignKey("collection.Turn", on_delete=models.CASCADE, related_name="reward_predictions")
    model_name = models.CharField(max_length=100)
    protocol = models.CharField(max_length=50)
    prob_1 = models.FloatField()
    predicted = models.PositiveSmallIntegerField(help_text=_("1 = response 1, 2 = response 2."))
    p_winner = models.FloatField()
    label = models.PositiveSmallIntegerField(null=True, blank=True)
    fold = models.SmallIntegerField(null=True, blank=True)
    prob_1_cal = models.FloatField(
        null=True, blank=True, help_text=_("P(response 1) calibrated inside the training folds (grouped protocol).")
    )
    p_winner_cal = models.FloatField(
        null=True, blank=True, help_text=_("Calibrated probability of the predicted winner (labels datasets).")
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "turn", "model_name", "protocol"], name="unique_prediction"
            ),
        ]
        indexes = [models.Index(fields=["run", "model_name", "protocol"])]

    def __str__(self) -> str:
        return f"turn {self.turn_id}: P(1)={self.prob_1:.2f} ({self.model_name}, {self.protocol})"


class AnalysisFigure(models.Model):
    """A rendered behaviour figure (PNG + SVG), with the job that made it."""

    name = models.CharField(max_length=100)
    title = models.CharField(max_length=200, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    png = models.BinaryField()
    svg = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title or self.name


class Leaderboard(models.Model):
    """A model leaderboard computed from the votes in the database (``analysis.leaderboard``).

    Explicit votes are the workers' preferences; implicit votes are a reward-model run's
    out-of-fold predictions (``reward_run``, ``reward_model``, ``reward_protocol``).
    """

    class Source(models.TextChoices):
        EXPLICIT = "explicit", _("Explicit preferences")
        IMPLICIT = "implicit", _("Reward-model predictions (implicit)")
        MIXED = "mixed", _("Mixed (explicit where voted, implicit elsewhere)")

    name = models.CharField(max_length=200, blank=True)
    sources = models.JSONField(default=list, blank=True, help_text=_("Vote sources; explicit is always fitted."))
    style_control = models.BooleanField(default=True)
    reward_run = models.ForeignKey(
        RewardModelRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="leaderboards",
        help_text=_("Predictions for implicit and mixed votes (default: the latest run with predictions)."),
    )
    reward_model = models.CharField(max_length=100, default="RF + IF")
    reward_protocol = models.CharField(max_length=50, default="grouped")
    soft = models.BooleanField(default=True, help_text=_("Predicted probability as a soft vote (else the winner)."))
    rounds = models.PositiveIntegerField(default=1000, help_text=_("Bootstrap rounds (workers resampled)."))
    seed = models.IntegerField(default=0)
    selection = models.ForeignKey(
        "collection.DataSelection", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("Whose votes count. Empty: every task not excluded by staff (QC not applied)."),
    )
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    n_votes = models.PositiveIntegerField(default=0, help_text=_("Explicit votes."))
    results = models.JSONField(default=dict, blank=True)
    table_text = models.TextField(blank=True)
    csv = models.TextField(blank=True)
    png = models.BinaryField(blank=True, default=b"")
    svg = models.TextField(blank=True)

    #: A re-run of its job from the Jobs list moves this row to the new job (jobs.services.job_rerun).
    job_follows_reruns = True

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name or f"leaderboard #{self.pk}"


class StudyPlan(models.Model):
    """How many workers (and votes) the next study needs, from the data in the database.

    Computed by the job ``analysis.learning_curve`` (:mod:`analysis.learning_curve`): learning
    curves over workers on held-out workers, the fitted curve, ``workers_needed`` and the votes a
    leaderboard needs. ``results`` is the pure code's JSON, so the page and the figure read one shape.
    """

    class Mode(models.TextChoices):
        PAIRWISE = "pairwise", _("Pairwise preferences")
        POINTWISE = "pointwise", _("Pointwise (better than previous)")

    name = models.CharField(max_length=200, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.PAIRWISE)
    repeats = models.PositiveSmallIntegerField(default=5, help_text=_("Random draws of workers per training size."))
    sizes = models.CharField(
        max_length=200, blank=True, help_text=_("Training sizes, comma-separated (empty: 8, 16, 24, … all)."),
    )
    trees = models.PositiveSmallIntegerField(default=50, help_text=_("Trees per forest."))
    quality_filter = models.BooleanField(default=True, help_text=_("Only tasks that pass the paper's quality filter."))
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    workers_needed = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Empty: the curve does not show that any study size will do."),
    )
    results = models.JSONField(default=dict, blank=True)
    table_text = models.TextField(blank=True)
    svg = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name or f"study plan #{self.pk}"
