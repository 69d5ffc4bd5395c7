"""Writes of the alignment app: build preference datasets, start training and evaluation jobs.

Datasets are made from the data of record: one pair per labelled pairwise turn (the turn id is
the pair id, so a query typed twice stays two pairs), from tasks not excluded by quality
control, leaving out turns where a provider failed.  Splits are grouped by prompt text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce

from analysis.reward.models import RF_IF, TEXT_FT, TEXT_FT_IF
from collection.models import Task, Turn
from jobs.models import Job
from jobs.services import job_start

from .models import EvaluationRun, PreferenceDataset, PreferencePair, TrainingRun
from .training import hub
from .training import preference as pref
from .training.config import N_TEST_QUERIES


def usable_pairs(*, tasks=None) -> pd.DataFrame:
    """Pairwise turns with two answers and no provider error, from tasks not excluded.

    Columns: ``pair_id`` (turn pk), ``prompt``, ``response_1``, ``response_2``, ``preference``
    (1 = response 1 preferred, 2 = response 2, NA = not rated).
    """
    tasks = Task.objects.counted().filter(excluded=False) if tasks is None else tasks
    qs = (
        Turn.objects.filter(task__in=tasks, error_1="", error_2="")
        .exclude(model_2="")
        .exclude(response_1="")
        .exclude(response_2="")
        .order_by("pk")
        .values_list("pk", "query", "response_1", "response_2", "preferred")
    )
    df = pd.DataFrame(list(qs), columns=["pair_id", "prompt", "response_1", "response_2", "preference"])
    df["preference"] = df["preference"].astype("Int64")
    return df


def sft_records(*, exclude_prompts: set[str] = frozenset()) -> list[dict[str, str]]:
    """Every collected answer (both sides, pointwise too) as an SFT record (paper 6.1); staff
    previews are not data."""
    rows = Turn.objects.filter(task__excluded=False, task__worker__is_preview=False).values_list(
        "query", "response_1", "response_2", "error_1", "error_2"
    )
    out = []
    for query, r1, r2, e1, e2 in rows:
        if pref._normalise(query) in exclude_prompts:
            continue
        for response, error in ((r1, e1), (r2, e2)):
            if response.strip() and not error:
                out.append({"prompt": query, "response": response})
    return out


def test_queries(*, n: int = N_TEST_QUERIES, seed: int = 0) -> list[str]:
    """The fixed, distinct evaluation queries: pointwise queries of usable tasks, seeded."""
    from .training.generate import normalise_query, select_test_queries

    queries = list(
        Turn.objects.filter(task__excluded=False, task__worker__is_preview=False, model_2="", error_1="")
        .exclude(response_1="")
        .order_by("pk")
        .values_list("query", flat=True)
    )
    # As many as there are *distinct* queries: two workers asking the same question is one query
    # (counting rows asked select_test_queries for more than exist: a 500 in the admin's form).
    distinct = {normalise_query(q) for q in queries} - {""}
    return select_test_queries(queries, n=min(n, len(distinct)), seed=seed)


#: Which out-of-fold predictions label a dataset when staff do not say: the paper's RF + IF
#: first, then the text reward models of ``analysis.text_reward`` (with features, then without).
REWARD_MODEL_ORDER = (RF_IF, TEXT_FT_IF, TEXT_FT)


def reward_run_labeller(run) -> tuple[str, str] | None:
    """(model_name, protocol) whose predictions label a dataset built from ``run``, or None.

    Worker-grouped predictions are preferred because they are the honest out-of-fold estimate:
    no worker's behaviour is seen in training and prediction at once.
    """
    available = set(run.predictions.values_list("model_name", "protocol").distinct())
    for protocol in ("grouped", "ungrouped", "paper"):
        for name in REWARD_MODEL_ORDER:
            if (name, protocol) in available:
                return name, protocol
    return None


@transaction.atomic
def preference_dataset_build(
    *,
    name: str,
    source: str,
    reward_run=None,
    reward_model: str = "",
    reward_protocol: str = "",
    valid: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    user=None,
    selection=None,
) -> PreferenceDataset:
    """Create a dataset from explicit labels or from a reward-model run's OOF predictions.

    With a reward run and neither ``reward_model`` nor ``reward_protocol``, the predictions are
    chosen by ``reward_run_labeller`` (and recorded on the dataset). The pairs come from the data
    ``selection``'s tasks; without one, from the reward run's selection, else from every task not
    excluded by staff. The selection used is recorded on the dataset (and in ``params``).
    """
    if selection is None and reward_run is not None:
        selection = reward_run.selection
    pairs = usable_pairs(tasks=selection.tasks() if selection is not None else None)
    if source == PreferenceDataset.Source.EXPLICIT:
        records = pref.records_from_explicit_labels(pairs)
    elif source == PreferenceDataset.Source.REWARD_RUN:
        if reward_run is None:
            raise ValueError("reward_run is required for source=reward_run")
        if not reward_model and not reward_protocol:
            labeller = reward_run_labeller(reward_run)
            if labeller is None:
                raise ValueError(f"run {reward_run.pk} has no RF + IF or text reward-model predictions")
            reward_model, reward_protocol = labeller
            name = name or f"{reward_run} / {reward_model} {reward_protocol}"
        preds = reward_run.predictions.all()
        if reward_model:
            preds = preds.filter(model_name=reward_model)
        if reward_protocol:
            preds = preds.filter(protocol=reward_protocol)
        # The calibrated probability where the run has one (rDPO reads the confidence as a flip rate).
        probs = preds.annotate(p1=Coalesce("prob_1_cal", "prob_1")).values_list("turn_id", "p1")
        predictions = pd.DataFrame(list(probs), columns=["pair_id", "prob_1"])
        if predictions["pair_id"].duplicated().any():
            raise ValueError("several predictions per pair: choose reward_model and reward_protocol")
        pairs = pairs[pairs["pair_id"].isin(predictions["pair_id"])]
        records = pref.records_from_reward_predictions(pairs, predictions)
    else:
        raise ValueError(f"unknown source {source!r}")
    splits = pref.split_by_prompt(records, valid=valid, test=test, seed=seed)
    dataset = PreferenceDataset.objects.create(
        name=name,
        source=source,
        reward_run=reward_run,
        reward_model=reward_model,
        reward_protocol=reward_protocol,
        params={"valid": valid, "test": test, "seed": seed,
                "selection": selection.record() if selection is not None else None},
        counts={k: len(v) for k, v in splits.items()},
        selection=selection,
        created_by=user,
    )
    by_id = pairs.set_index("pair_id")
    rows = []
    for split, recs in splits.items():
        for r in recs:
            pair = by_id.loc[int(r["pair_id"])]
            side = 1 if (r["chosen"] == pair["response_1"] and r["rejected"] == pair["response_2"]) else 2
            rows.append(
                PreferencePair(
                    dataset=dataset,
                    turn_id=int(r["pair_id"]),
                    prompt=r["prompt"],
                    chosen=r["chosen"],
                    rejected=r["rejected"],
                    chosen_side=side,
                    confidence=r.get("confidence"),
                    split=split,
                )
            )
    PreferencePair.objects.bulk_create(rows, batch_size=500)
    return dataset


def dataset_records(
    *, dataset: PreferenceDataset, split: str | None = None, reference_key: str | None = None
) -> list[dict[str, Any]]:
    """The dataset's pairs as preference records, in pair order; ``pair_id`` is the turn's public
    query id, the id the crowd export gives the same pair.

    With ``reference_key`` equal to the dataset's stored key, each record also carries the cached
    ``reference_chosen_logps``/``reference_rejected_logps``; with ``reference_key=None``, whatever is
    stored (the export's view).  A stale key gives no reference values, never wrong ones.
    """
    qs = dataset.pairs.select_related("turn").order_by("pk")
    if split:
        qs = qs.filter(split=split)
    with_reference = bool(dataset.reference_key) and reference_key in (None, dataset.reference_key)
    records = []
    for p in qs:
        record = {
            "pair_id": str(p.turn.public_id),
            "prompt": p.prompt,
            "chosen": p.chosen,
            "rejected": p.rejected,
            "confidence": p.confidence,
            "source": dataset.source,
        }
        if with_reference and p.reference_chosen_logps is not None:
            record["reference_chosen_logps"] = p.reference_chosen_logps
            record["reference_rejected_logps"] = p.reference_rejected_logps
        records.append(record)
    return records


def reference_logps_key(*, dataset: PreferenceDataset, reference_path: str | Path, cfg: Any) -> str:
    """Cache key of the reference log-probs of ``dataset`` under the checkpoint at ``reference_path``.

    Pairs of a dataset never change after it is built, so its id, pair count and newest pair
    stand for its version; the checkpoint enters with its path and fingerprint (config, weight
    file sizes and mtimes), the training settings with what changes tokenisation or numerics.
    """
    from django.db.models import Max

    from .training.reference import cache_key, reference_fingerprint, settings_for_key

    version = dataset.pairs.aggregate(last=Max("pk"))
    return cache_key(
        dataset={"id": dataset.pk, "pairs": dataset.pairs.count(), "last_pair": version["last"]},
        reference_path=reference_path, fingerprint=reference_fingerprint(reference_path),
        settings=settings_for_key(cfg),
    )


@transaction.atomic
def dataset_reference_logps_store(
    *, dataset: PreferenceDataset, key: str, reference_path: str | Path, values: dict[str, tuple[float, float]]
) -> int:
    """Store reference log-probs by pair (``pair_id`` of :func:`dataset_records`) under ``key``;
    values of another key are cleared.

    Returns the number of pairs written.  One key per dataset: a run with another reference
    replaces the cache rather than mixing two references' values.
    """
    dataset = PreferenceDataset.objects.select_for_update().get(pk=dataset.pk)
    if dataset.reference_key != key:
        dataset.pairs.update(reference_chosen_logps=None, reference_rejected_logps=None)
    pairs = [p for p in dataset.pairs.select_related("turn") if str(p.turn.public_id) in values]
    for pair in pairs:
        pair.reference_chosen_logps, pair.reference_rejected_logps = values[str(pair.turn.public_id)]
    PreferencePair.objects.bulk_update(pairs, ["reference_chosen_logps", "reference_rejected_logps"], batch_size=500)
    dataset.reference_key, dataset.reference_checkpoint = key, str(reference_path)
    dataset.save(update_fields=["reference_key", "reference_checkpoint"])
    return len(pairs)


def preference_dataset_export(*, dataset: PreferenceDataset, path: str | Path) -> Path:
    """Write ``{split}.jsonl`` and ``{split}.parquet`` plus a dataset card (README.md)."""
    reward = ""
    if dataset.reward_run_id:
        reward = f" (run {dataset.reward_run_id}, {dataset.reward_model} {dataset.reward_protocol})"
    reference = (f"`{dataset.reference_checkpoint}` (cache key `{dataset.reference_key[:12]}`)"
                 if dataset.reference_key else "(none computed yet)")
    about = (
        f"Preference pairs exported by IFllm Lab.\n\n- Source: {dataset.get_source_display()}{reward}\n"
        f"- Pairs: {dataset.counts}\n"
        f"- Tasks: {_selection_sentence(dataset)}\n"
        f"- `reference_chosen_logps` / `reference_rejected_logps`: summed log-probs of each answer "
        f"under the frozen reference {reference}, where a training run computed them (empty otherwise)."
    )
    splits = {split: dataset_records(dataset=dataset, split=split) for split in PreferencePair.Split.values}
    return hub.write_preference_dataset(path, splits, title=dataset.name or f"IFllm preferences {dataset.pk}",
                                        about=about)


def _selection_sentence(dataset: PreferenceDataset) -> str:
    """Which tasks the pairs come from, for the dataset card."""
    sel = dataset.selection
    if sel is None:
        return "every task not excluded by staff (no data selection; QC thresholds not applied)"
    rules = " ".join((sel.summary or {}).get("rules_text", []))
    reasons = ", ".join(f"{r['label']}: {r['tasks']}" for r in (sel.summary or {}).get("by_reason", {}).values())
    gone = sel.n_kept_gone()  # tasks a participant's withdrawal deleted: not in the pairs
    withdrawn = f" ({gone} of them since withdrawn and deleted, so not used)" if gone else ""
    return (f"data selection {sel.name} v{sel.version} (id {sel.pk}), {sel.n_kept} of {sel.n_candidates} tasks "
            f"kept{withdrawn}. Rules: {rules} Left out per reason: {reasons or 'none'}.")


def runs_dir() -> Path:
    return Path(getattr(settings, "IFLLM_RUNS_DIR", settings.VAR_DIR / "runs"))


def training_run_start(
    *,
    method: str,
    base_model: str = "",
    dataset: PreferenceDataset | None = None,
    sft_run: TrainingRun | None = None,
    config: dict[str, Any] | None = None,
    name: str = "",
    user=None,
) -> TrainingRun:
    """Create a training run and start its job on the ``gpu`` queue.

    SFT needs ``base_model`` (a local checkpoint path).  DPO/rDPO need ``dataset`` and
    ``sft_run``: the policy starts from the SFT model and the SFT model is the reference.
    A run too short to move the model (``checks.training_length_warning``) starts with that
    warning on its page; the admin form asks first.
    """
    from .checks import check_training

    errors = check_training(method=method, base_model=base_model, dataset=dataset, sft_run=sft_run,
                            config=config or {})
    if errors:
        raise ValueError("; ".join(f"{field}: {msg}" for field, msg in errors.items()))
    if method != TrainingRun.Method.SFT:
        base_model = base_model or sft_run.base_model
    from .checks import training_length_warning

    short = training_length_warning(method=method, dataset=dataset, config=config or {})
    run = TrainingRun.objects.create(
        name=name, method=method, base_model=base_model, dataset=dataset, sft_run=sft_run,
        config=config or {}, created_by=user, metrics={"warnings": [short]} if short else {},
    )
    run.output_dir = str(runs_dir() / f"run-{run.pk}")
    run.job = job_start(kind="alignment.train", params={"run_pk": run.pk}, user=user)
    run.save(update_fields=["output_dir", "job"])
    return run


def training_run_resume(*, run: TrainingRun, user=None) -> Job:
    """Continue a stopped run from its newest checkpoint in a new job.

    Refused (ValueError naming why) while its job runs, and once it has finished: its ``final``
    checkpoint is the reference of later runs, so nothing may train over it (the job refuses
    too; this says so before a job is made).
    """
    from .checks import final_checkpoint

    if run.job and not run.job.is_finished:
        raise ValueError("still running")
    if final_checkpoint(run) is not None or (run.job and run.job.status == run.job.Status.SUCCEEDED):
        raise ValueError("finished, so it is not resumed (its outputs are kept). Start a new run to train again")
    run.job = job_start(kind="alignment.train", params={"run_pk": run.pk}, user=user)
    run.save(update_fields=["job"])
    return run.job


def evaluation_run_start(
    *,
    sft_run: TrainingRun,
    aligned_run: TrainingRun,
    judge=None,
    params: dict[str, Any] | None = None,
    name: str = "",
    user=None,
) -> EvaluationRun:
    from .checks import check_evaluation

    errors = check_evaluation(sft_run=sft_run, aligned_run=aligned_run, judge=judge, params=params or {})
    if errors:
        raise ValueError("; ".join(f"{field}: {msg}" for field, msg in errors.items()))
    run = EvaluationRun.objects.create(
        name=name, sft_run=sft_run, aligned_run=aligned_run, judge=judge, params=params or {}, created_by=user
    )
    run.job = job_start(kind="alignment.evaluate", params={"eval_pk": run.pk}, user=user)
    run.save(update_fields=["job"])
    return run


def human_batch_export(*, evaluation: EvaluationRun, seed: int = 0) -> Path:
    """Write an MTurk-ready human-evaluation batch of an evaluation's comparisons.

    ``batch.csv`` (what workers see: query and the two answers in random order), ``template.html``
    (the paper's questions) and ``key.csv`` (which system is A/B; kept by the lab).
    """
    from .training.human_eval import export_human_batch, write_mturk_csv, write_mturk_template

    if not evaluation.comparisons:
        raise ValueError("the evaluation has no judged comparisons yet")
    comparisons = pd.DataFrame(evaluation.comparisons)
    batch, key = export_human_batch(comparisons, seed=seed)
    folder = runs_dir() / f"human-eval-{evaluation.pk}"
    folder.mkdir(parents=True, exist_ok=True)
    write_mturk_csv(batch, folder / "batch.csv")
    write_mturk_template(folder / "template.html")
    key.to_csv(folder / "key.csv", index=False)
    evaluation.human_eval = {**evaluation.human_eval, "folder": str(folder), "items": len(batch)}
    evaluation.save(update_fields=["human_eval"])
    return folder


def human_results_import(*, evaluation: EvaluationRun, results_csv: str | Path) -> dict[str, Any]:
    """Un-blind MTurk results and compare them with the judge (Spearman, per dimension)."""
    from .training.human_eval import DIMENSIONS, compare_with_judge, import_human_results

    folder = Path(evaluation.human_eval.get("folder", ""))
    if not (folder / "key.csv").exists():
        raise ValueError("export the human-evaluation batch first (its key is needed)")
    key = pd.read_csv(folder / "key.csv")
    human = import_human_results(pd.read_csv(results_csv), key)
    judged = pd.DataFrame(evaluation.comparisons).reset_index(drop=True)
    judged["item_id"] = [f"item-{i:04d}" for i in range(len(judged))]
    summary: dict[str, Any] = {"ratings": len(human)}
    for dim in DIMENSIONS:
        if (human["dimension"] == dim).any():
            stats = compare_with_judge(human, judged, dimension=dim)
            means = human[human["dimension"] == dim].groupby("system")["score"].mean()
            values = {**stats, **{f"mean_{s}": v for s, v in means.items()}}
            # JSON (and PostgreSQL's jsonb) has no NaN: an undefined correlation is stored as null.
            summary[dim] = {k: (None if v != v else float(v)) for k, v in values.items()}
    evaluation.human_eval = {**evaluation.human_eval, "results": summary}
    evaluation.save(update_fields=["human_eval"])
    return summary


def models_dir() -> Path:
    return Path(getattr(settings, "IFLLM_MODELS_DIR", settings.VAR_DIR / "models"))


def smoke_model_make(*, force: bool = False) -> tuple[Path, bool]:
    """The smoke-test model's folder under ``var/models/``, and whether it was made now.

    An existing one is kept unless ``force``: runs trained from it name it as their base model.
    """
    from .training.smoke import SMOKE_NAME, make_smoke_model

    path = models_dir() / SMOKE_NAME
    if (path / "config.json").exists() and not force:
        return path, False
    return make_smoke_model(path), True
