"""Alignment runs: preference datasets, training runs, and judged evaluations.

The training code is in ``alignment.training`` (pure); jobs on the ``gpu`` queue fill these rows.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .training.preference import SOURCE_EXPLICIT, SOURCE_REWARD_RUN


class PreferenceDataset(models.Model):
    """A set of preference pairs, each from one labelled turn (never keyed by prompt text)."""

    class Source(models.TextChoices):
        EXPLICIT = SOURCE_EXPLICIT, _("Explicit worker labels")
        REWARD_RUN = SOURCE_REWARD_RUN, _("Reward-model out-of-fold predictions")

    name = models.CharField(max_length=200)
    source = models.CharField(max_length=16, choices=Source.choices)
    reward_run = models.ForeignKey(
        "analysis.RewardModelRun", null=True, blank=True, on_delete=models.SET_NULL
    )
    reward_model = models.CharField(max_length=100, blank=True)
    reward_protocol = models.CharField(max_length=50, blank=True)
    params = models.JSONField(default=dict, blank=True)
    selection = models.ForeignKey(
        "collection.DataSelection", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("The tasks whose turns become pairs. Empty: the reward run's selection, else every task "
                    "not excluded by staff."),
    )
    counts = models.JSONField(default=dict, blank=True)
    reference_key = models.CharField(
        max_length=64, blank=True,
        help_text=_("Cache key (dataset version, reference checkpoint and fingerprint, tokenisation) of the "
                    "reference log-probs stored on the pairs; empty when none are stored."),
    )
    reference_checkpoint = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class PreferencePair(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train"
        VALID = "valid"
        TEST = "test"

    dataset = models.ForeignKey(PreferenceDataset, on_delete=models.CASCADE, related_name="pairs")
    turn = models.ForeignKey("collection.Turn", on_delete=models.CASCADE, related_name="+")
    prompt = models.TextField()
    chosen = models.TextField()
    rejected = models.TextField()
    chosen_side = models.PositiveSmallIntegerField(help_text=_("1 = response 1, 2 = response 2."))
    confidence = models.FloatField(null=True, blank=True)
    split = models.CharField(max_length=8, choices=Split.choices)
    # Summed log-probs under the frozen reference named by the dataset's reference_key (TRL's names).
    reference_chosen_logps = models.FloatField(null=True, blank=True)
    reference_rejected_logps = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "turn"], name="unique_pair_turn")]

    def __str__(self) -> str:
        return f"pair {self.turn_id} ({self.split})"


class TrainingRun(models.Model):
    """SFT, DPO + NLL or rDPO + NLL of one base model; DPO runs start from (and refer to) an SFT run."""

    class Method(models.TextChoices):
        SFT = "sft", "SFT"
        DPO = "dpo", "DPO + NLL"
        RDPO = "rdpo", "rDPO + NLL"

    name = models.CharField(max_length=200, blank=True)
    method = models.CharField(max_length=8, choices=Method.choices)
    base_model = models.CharField(max_length=500, help_text=_("Local path of a checkpoint."))
    dataset = models.ForeignKey(PreferenceDataset, null=True, blank=True, on_delete=models.PROTECT)
    sft_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="aligned_runs"
    )
    config = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    output_dir = models.CharField(max_length=500, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    #: A re-run of its job from the Jobs list moves this row to the new job (jobs.services.job_rerun).
    job_follows_reruns = True

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"{self.get_method_display()} #{self.pk}"


class EvaluationRun(models.Model):
    """Generation by the SFT and an aligned model on test queries, judged in both orders."""

    name = models.CharField(max_length=200, blank=True)
    sft_run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="+")
    aligned_run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="evaluations")
    judge = models.ForeignKey("collection.LLMModel", null=True, on_delete=models.SET_NULL)
    params = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    comparisons = models.JSONField(default=list, blank=True, help_text=_("One row per query."))
    table = models.JSONField(default=list, blank=True, help_text=_("Table 3 rows."))
    human_eval = models.JSONField(
        default=dict, blank=True, help_text=_("Exported batch folder and, once imported, the comparison.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    #: A re-run of its job from the Jobs list moves this row to the new job (jobs.services.job_rerun).
    job_follows_reruns = True

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"evaluation #{self.pk}"
