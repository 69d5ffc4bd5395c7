"""Database side of the analysis: feed the pure pipeline from the data of record, store results.

The pure code (``analysis.pipeline`` and the packages below it) takes the release's dataframes;
here the same frames are built from the database (``collection.selectors``), so imported release
data and the site's own sessions go through identical computation.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import transaction

from collection.models import Task, TrajectoryChunk
from collection.selectors import task_samples, turns_frame

from .models import AnalysisFigure, RewardModelRun, RewardPrediction

Progress = Callable[[float, str], None]

DEFAULT_PARAMS: dict[str, Any] = {
    "seeds": [0, 1, 2],
    "trees": 500,
    "k": 50,
    "n_splits": 5,
    "quality_filter": True,
    "worker_normalise": True,
    "text": False,
}


def _noop(pct: float, message: str = "") -> None:
    return None


def database_inputs(*, tasks=None) -> tuple[pd.DataFrame, list[tuple[tuple[str, int], str, Any]]]:  # noqa: ANN001
    """Turns (release ``queries`` columns) and the task keys with their sample loaders."""
    tasks = Task.objects.filter(excluded=False) if tasks is None else tasks
    turns = turns_frame(tasks=tasks)
    with_samples = tasks.filter(chunks__isnull=False).distinct().select_related("worker")
    keys = []
    for task in with_samples.order_by("pk"):
        keys.append(((task.worker.pseudonym, task.public_id), task.effective_mode, task.pk))
    return turns, keys


def _samples_iter(
    keys: list, progress: Progress, lo: float, hi: float
) -> Iterator[tuple[tuple[str, int], str, pd.DataFrame]]:
    """Decode each task's samples only when the pipeline reaches it (bounded memory)."""
    for i, (key, mode, pk) in enumerate(keys):
        if i % 20 == 0:
            progress(lo + (hi - lo) * i / max(len(keys), 1), f"task {i} of {len(keys)}")
        yield key, mode, task_samples(task=pk)


def _task_fingerprints(keys: list) -> list[tuple[tuple[str, int], str]]:
    """Per task, a hash of its chunks' digests: changes whenever any sample changes."""
    import hashlib

    by_task: dict[int, hashlib._Hash] = {}
    rows = TrajectoryChunk.objects.filter(task_id__in=[pk for _, _, pk in keys]).order_by("task_id", "seq")
    for task_id, seq, n, digest, first, last in rows.values_list(
        "task_id", "seq", "n_samples", "digest", "first_ms", "last_ms"
    ):
        by_task.setdefault(task_id, hashlib.sha256()).update(f"{seq}:{n}:{digest}:{first}:{last};".encode())
    return [(key, by_task[pk].hexdigest()[:16] if pk in by_task else "") for key, _, pk in keys]


def feature_table(*, params: dict[str, Any], progress: Progress = _noop):  # noqa: ANN201 - (turns, FeatureTable)
    """Match every task and extract the paper's features (plus the worker-relative copies).

    The matched feature table is cached as Parquet under ``var/cache/features`` keyed by the data
    version (turn texts and times, every chunk's digest, the matching and feature configs), so a
    second run on unchanged data skips decoding and matching.
    """
    import json

    from analysis.features import FeatureTable, build_feature_table
    from analysis.features.cache import data_version, load_cached, save_cached
    from analysis.features.normalise import add_worker_normalised

    turns, keys = database_inputs()
    version = data_version(turns, _task_fingerprints(keys))
    cache_dir = settings.VAR_DIR / "cache" / "features"
    features = load_cached(cache_dir, version) if params.get("use_cache", True) else None
    if features is not None:
        progress(45, "features from cache")
        quality = load_cached(cache_dir, version, "quality")
        report = json.loads((cache_dir / f"report-{version}.json").read_text())
        table = FeatureTable(features=features, quality=quality, match_report=report)
    else:
        table = build_feature_table(turns, _samples_iter(keys, progress, 5, 45))
        save_cached(table.features, cache_dir, version)
        save_cached(table.quality, cache_dir, version, "quality")
        (cache_dir / f"report-{version}.json").write_text(json.dumps(table.match_report, default=str))
    table.data_version = version
    if params.get("worker_normalise") and not table.features.empty:
        table.features = add_worker_normalised(table.features)
    return turns, table


def _results_rows(results: dict) -> list[dict[str, Any]]:
    from analysis.reward import summarize

    rows = []
    for setting, res in results.items():
        summary = summarize(res.scores).reset_index()
        for rec in summary.to_dict("records"):
            rows.append({"setting": setting, **{k: (None if pd.isna(v) else v) for k, v in rec.items()}})
    return rows


@transaction.atomic
def _store_predictions(run: RewardModelRun, oof: pd.DataFrame, turns: pd.DataFrame) -> int:
    """Pairwise OOF predictions, averaged over seeds, one row per (turn, model, protocol)."""
    if oof.empty:
        return 0
    pair = oof[oof["setting"] == "Pairwise"]
    mean = pair.groupby(["query_id", "model", "protocol"], as_index=False).agg(
        prob_1=("prob_1", "mean"), y=("y", "first"), fold=("fold", "first")
    )
    turn_of = dict(zip(turns["query_id"], turns["turn_id"], strict=True))
    rows = []
    for r in mean.itertuples(index=False):
        predicted = 1 if r.prob_1 >= 0.5 else 2
        rows.append(
            RewardPrediction(
                run=run, turn_id=turn_of[r.query_id], model_name=r.model, protocol=r.protocol,
                prob_1=float(r.prob_1), predicted=predicted, p_winner=float(max(r.prob_1, 1 - r.prob_1)),
                label=(1 if r.y == 1 else 2) if pd.notna(r.y) else None, fold=int(r.fold),
            )  # fmt: skip
        )
    RewardPrediction.objects.filter(run=run).delete()
    RewardPrediction.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def reward_model_run_execute(*, run: RewardModelRun, progress: Progress = _noop) -> RewardModelRun:
    """Compute Table 2 (all protocols) from the database and store it with the OOF predictions."""
    from analysis import pipeline
    from analysis.reward import EvalConfig, ForestParams, default_specs, text_specs

    params = {**DEFAULT_PARAMS, **run.params}
    timings: dict[str, float] = {}
    t = time.perf_counter()
    turns, table = feature_table(params=params, progress=progress)
    timings["load + match + features"] = time.perf_counter() - t
    features = table.features
    report = {"matching": table.match_report, "turns_with_features": len(features)}
    if params["quality_filter"] and not features.empty:
        before = len(features)
        features = pipeline.apply_quality_filter(features, table.quality)
        report["quality_filter"] = {"kept": len(features), "of": before}
    forest = ForestParams(n_estimators=int(params["trees"]))
    specs = default_specs(forest)
    embeddings = None
    if params["text"]:
        from analysis.text_embed import text_embedding_table

        progress(48, "text embeddings")
        t = time.perf_counter()
        # Only the tasks being evaluated (whole tasks, so "previous answer" stays right).
        keep = set(zip(features["worker"], features["task_id"], strict=True))
        used = turns[[k in keep for k in zip(turns["worker"], turns["task_id"], strict=True)]]
        embeddings = text_embedding_table(used, settings.VAR_DIR / "cache" / "embeddings")
        timings["text embeddings"] = time.perf_counter() - t
        specs += text_specs()
    progress(50, "reward models")
    config = EvalConfig(
        seeds=tuple(int(s) for s in params["seeds"]), k=int(params["k"]), n_splits=int(params["n_splits"]),
        selector_n_estimators=int(params["trees"]), regression_n_estimators=max(50, int(params["trees"]) // 2),
    )  # fmt: skip
    t = time.perf_counter()
    rr = pipeline.run_reward_table(
        features, turns, config=config, specs=specs,
        pointwise_specs=[s for s in default_specs(forest) if s.name.startswith("RF")], text_embeddings=embeddings,
    )  # fmt: skip
    timings["reward models"] = time.perf_counter() - t
    timings.update({f"of which {k}": v for k, v in rr.timings.items()})
    run.results = _results_rows(rr.results)
    run.table_text = rr.table
    if not rr.likert.empty:
        r2 = rr.likert.groupby("protocol")["r2"].agg(["mean", "std"])
        run.table_text += "\n\nPointwise Likert regression R^2:\n" + "\n".join(
            f"  {p}: {row['mean']:.4f} ± {row['std']:.4f}" for p, row in r2.iterrows()
        )
    run.timings = timings
    run.report = report
    run.n_samples = int(len(features))
    run.data_version = table.data_version
    run.params = params
    run.save()
    progress(95, "storing out-of-fold predictions")
    _store_predictions(run, rr.oof, turns)
    return run


# --------------------------------------------------------------------------- figures
def _png_svg(fig) -> tuple[bytes, str]:  # noqa: ANN001 - matplotlib Figure
    png, svg = io.BytesIO(), io.StringIO()
    fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
    fig.savefig(svg, format="svg", bbox_inches="tight")
    return png.getvalue(), svg.getvalue()


def figures_render(*, job=None, progress: Progress = _noop) -> list[AnalysisFigure]:  # noqa: ANN001
    """Render every behaviour figure of paper section 4 / appendix A.3 from the database."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    from analysis import pipeline
    from analysis.features import feature_columns
    from analysis.plots import behaviour, importance
    from analysis.reward import pairwise_labels

    turns, keys = database_inputs()
    matches, _ = pipeline.match_all(turns, _samples_iter(keys, progress, 5, 40))
    points = behaviour.trajectory_points(matches, turns)
    figures: list[tuple[str, str, Any]] = []
    if not points.empty:
        for signal in ("gaze", "mouse"):
            figures.append((f"reading_position_length_{signal}", f"Reading position by length ({signal})",
                            behaviour.reading_position(points, "length", signal=signal)))  # fmt: skip
            figures.append((f"reading_position_side_{signal}", f"Reading position by side ({signal})",
                            behaviour.reading_position(points, "side", signal=signal)))  # fmt: skip
            figures.append((f"heatmap_{signal}", f"Per-character heatmap ({signal})",
                            behaviour.reading_heatmap(points, signal=signal)))  # fmt: skip
            figures.append((f"positions_{signal}", f"Position distributions ({signal})",
                            behaviour.position_distributions(points, "length", signal=signal)))  # fmt: skip
        matrix = behaviour.trajectory_matrix(points)
        if len(matrix) >= 6:
            _, _, fig = behaviour.cluster_trajectories(matrix, n_clusters=min(6, len(matrix) // 2))
            figures.append(("clusters", "Trajectory clusters (BisectingKMeans centres)", fig))
        _, fig = behaviour.gaze_mouse_correlation(points)
        figures.append(("gaze_mouse_correlation", "Gaze-mouse correlation", fig))
    progress(60, "feature importances")
    _, table = feature_table(params={"worker_normalise": False}, progress=lambda *_: None)
    feats = table.features
    labels = pairwise_labels(turns)
    rows = feats[(feats["mode"] == "pairwise") & feats["query_id"].isin(labels.index)].set_index("query_id")
    if len(rows) >= 20:
        X = rows[feature_columns(rows)].fillna(-1.0)
        y = labels.loc[rows.index]
        forest = RandomForestClassifier(n_estimators=300, min_samples_leaf=5, random_state=0, n_jobs=2).fit(X, y)
        imp = pd.Series(forest.feature_importances_, index=X.columns)
        figures.append(("importances", "Feature importances (RF, all features)", importance.importance_figure(imp)))
        lengths = rows.filter(like="text.response_length").sum(axis=1)
        cuts = np.nanquantile(lengths, [1 / 3, 2 / 3])
        by_group = {}
        for name, mask in (("short", lengths <= cuts[0]), ("medium", (lengths > cuts[0]) & (lengths <= cuts[1])),
                           ("long", lengths > cuts[1])):  # fmt: skip
            if mask.sum() >= 10 and y[mask].nunique() == 2:
                f = RandomForestClassifier(n_estimators=200, min_samples_leaf=5, random_state=0, n_jobs=2)
                by_group[name] = pd.Series(f.fit(X[mask], y[mask]).feature_importances_, index=X.columns)
        if by_group:
            figures.append(("signal_weight", "Total weight per signal by length group",
                            importance.signal_weight_figure(by_group)))  # fmt: skip
        top = list(imp.sort_values(ascending=False).index[:3])
        figures.append(("partial_dependence", "Partial dependence of the top features",
                        importance.partial_dependence_figure(forest, X, top)))  # fmt: skip
    out = []
    for i, (name, title, fig) in enumerate(figures):
        progress(70 + 25 * i / max(len(figures), 1), f"rendering {name}")
        png, svg = _png_svg(fig)
        out.append(AnalysisFigure.objects.create(name=name, title=title, job=job, png=png, svg=svg))
    return out


# --------------------------------------------------------------------------- text reward model
TEXT_DEFAULTS: dict[str, Any] = {
    "model_path": "",
    "epochs": 2,
    "lr": 1e-5,
    "batch_size": 1,
    "max_length": 512,
    "n_splits": 5,
    "seeds": [0],
    "protocols": ["grouped", "ungrouped"],
    "with_features": False,
    "k": 50,
    "quality_filter": True,
}


def text_reward_run_execute(*, run: RewardModelRun, progress: Progress = _noop) -> RewardModelRun:
    """Fine-tune a local checkpoint on the labelled pairs (optionally + IF) under CV; store OOF."""
    from analysis import pipeline
    from analysis.features import feature_columns
    from analysis.reward import format_table, pairwise_labels
    from analysis.reward.evaluate import EvalResult
    from analysis.reward.text_finetune import TextPairClassifier, cross_validate_text

    params = {**TEXT_DEFAULTS, **run.params}
    if not params["model_path"]:
        raise ValueError("params.model_path: the local path of a checkpoint is required")
    turns, table = feature_table(params={"worker_normalise": False}, progress=lambda *_: None)
    features = table.features
    if params["quality_filter"] and not features.empty:
        features = pipeline.apply_quality_filter(features, table.quality)
    labels = pairwise_labels(turns)
    rows = features[(features["mode"] == "pairwise") & features["query_id"].isin(labels.index)]
    rows = rows.set_index("query_id")
    pairs = turns.set_index("query_id").loc[rows.index, ["query", "response_1", "response_2"]]
    name = "Text FT + IF" if params["with_features"] else "Text FT"

    def make_model(seed: int) -> TextPairClassifier:
        return TextPairClassifier(
            params["model_path"], epochs=int(params["epochs"]), lr=float(params["lr"]),
            batch_size=int(params["batch_size"]), max_length=int(params["max_length"]), seed=seed,
        )  # fmt: skip

    scores, oof = cross_validate_text(
        pairs, labels.loc[rows.index].to_numpy(), rows["worker"].to_numpy(), rows.index.to_numpy(),
        make_model=make_model, model_name=name, protocols=params["protocols"],
        seeds=[int(s) for s in params["seeds"]], n_splits=int(params["n_splits"]),
        features=rows[feature_columns(rows)] if params["with_features"] else None, k=int(params["k"]),
        on_fold=lambda done, total: progress(10 + 85 * done / total, f"fold {done} of {total}"),
    )  # fmt: skip
    result = EvalResult(scores=scores, oof=oof, importances=pd.DataFrame())
    run.params = params
    run.results = _results_rows({"Pairwise": result})
    run.table_text = format_table({"Pairwise": result})
    run.n_samples = len(rows)
    run.data_version = table.data_version
    run.save()
    _store_predictions(run, oof.assign(setting="Pairwise"), turns)
    return run
