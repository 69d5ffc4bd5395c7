"""Models aimed at new workers, each under worker-grouped CV on a release, against length only.

Usage::

    .venv/bin/python benchmarks/reward_new_workers.py [/tmp/dev] [--seeds 0,1] [--trees 100]
        [--sections variants,relative,cascade,sequence,text,fewshot,calibration,transfer]
        [--cache-dir /tmp/ifllm-new-workers] [--figure reliability.png]

Prints one markdown table per section: accuracy with a 95 % interval from a bootstrap over
workers and the paired difference to ``RF + Text lengths`` on the same rows and folds (every
evaluation uses the same seeds, so StratifiedGroupKFold gives the same folds). The feature
table and the time-course features are cached as Parquet in ``--cache-dir`` (first run: ~3 min
to read and match the dev release). Quality filter and worker normalisation as the default run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import pipeline
from analysis.reward import EvalConfig, ForestParams, default_specs
from analysis.reward.calibration_report import calibration_table, choose_method
from analysis.reward.evaluate import evaluate_table
from analysis.reward.few_shot import few_shot_predictions
from analysis.reward.models import RF_IF
from analysis.reward.summary import LENGTH_BASELINE, format_interval_table, predictions_summary
from analysis.reward.variants import (
    cascade_specs,
    new_worker_specs,
    relative_features,
    sequence_specs,
    text_blend_specs,
)

SECTIONS = ("variants", "relative", "cascade", "sequence", "text", "fewshot", "calibration", "transfer")


def cached_tables(root: str, cache_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(features after the quality filter, queries, time-course features), cached as Parquet."""
    from analysis.features.time_course import release_time_course

    key = f"{Path(root).resolve().name}-{int(Path(root, 'query_logs_table.csv').stat().st_mtime)}"
    paths = {n: cache_dir / f"{key}-{n}.parquet" for n in ("features", "queries", "time_course")}
    if all(p.exists() for p in paths.values()):
        return tuple(pd.read_parquet(paths[n]) for n in ("features", "queries", "time_course"))  # type: ignore[return-value]
    release = pipeline.load_release(root, n_jobs=2)
    table = pipeline.build_features(release, worker_normalise=True)
    features = pipeline.apply_quality_filter(table.features, table.quality)
    tc = release_time_course(release.tables.queries, release.samples_by_task())
    cache_dir.mkdir(parents=True, exist_ok=True)
    features.to_parquet(paths["features"])
    release.tables.queries.to_parquet(paths["queries"])
    tc.to_parquet(paths["time_course"])
    return features, release.tables.queries, tc


def grouped(X, y, groups, qids, specs, config: EvalConfig) -> pd.DataFrame:
    """Out-of-fold rows of the grouped protocol."""
    return evaluate_table(X, y, groups=groups, query_ids=qids, specs=specs, config=config).oof


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default="/tmp/dev")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--cache-dir", default=os.environ.get("IFLLM_CACHE", "/tmp/ifllm-new-workers"))
    parser.add_argument("--figure", help="write the reliability diagram (PNG) here")
    parser.add_argument("--oof", help="write every out-of-fold row (parquet) here")
    parser.add_argument(
        "--prior-sd",
        type=float,
        default=1.0,
        help="few-shot: sd of the normal prior of a worker's logit offset (fixed in advance)",
    )
    args = parser.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    seeds = tuple(int(s) for s in args.seeds.split(","))
    forest = ForestParams(n_estimators=args.trees)
    config = EvalConfig(seeds=seeds, protocols=("grouped",), selector_n_estimators=args.trees,
                        calibration="none", n_jobs=2)
    started = time.perf_counter()
    features, queries, tc = cached_tables(args.root, Path(args.cache_dir))
    data = pipeline.labelled_set(features, queries, "pairwise", tc)
    print(f"pairwise: {len(data.y)} labelled pairs, {data.groups.nunique()} workers, "
          f"seeds {seeds}, {args.trees} trees (load {time.perf_counter() - started:.0f} s)")
    base_specs = [s for s in default_specs(forest) if s.name in (LENGTH_BASELINE, RF_IF)]
    # the paper's feature table only: the new groups (cascade, seq) enter only the variants that name them
    no_course = data.X[[c for c in data.X.columns if not c.startswith(("cascade.", "seq."))]]
    parts = [grouped(no_course, data.y, data.groups, data.query_ids, base_specs, config).assign(section="base")]
    timings = {"base": time.perf_counter() - started}

    def run(section: str, X: pd.DataFrame, specs, rename: str = "") -> None:
        t = time.perf_counter()
        oof = grouped(X, data.y, data.groups, data.query_ids, specs, config)
        if rename:
            oof["model"] = oof["model"] + rename
        parts.append(oof.assign(section=section))
        timings[section] = timings.get(section, 0.0) + time.perf_counter() - t

    if "variants" in sections:
        run("variants", no_course, new_worker_specs(forest))
    if "relative" in sections:
        for within in ("worker", "task"):
            rel = pipeline.labelled_set(relative_features(features, within), queries, "pairwise")
            spec = [s for s in base_specs if s.name == RF_IF]
            run("relative", rel.X.loc[:, no_course.columns], spec, rename=f", z within {within}")
    if "cascade" in sections:
        for w in ("1", "2", "4"):
            cols = [c for c in data.X.columns if c.startswith("cascade.") and (f"last{w}s" in c)]
            run("cascade", pd.concat([no_course, data.X[cols]], axis=1), cascade_specs(forest)[:1], rename=f" ({w} s)")
        with_cascade = data.X[[c for c in data.X.columns if not c.startswith("seq.")]]
        run("cascade", with_cascade, cascade_specs(forest), rename=" (1, 2, 4 s + last box)")
    if "sequence" in sections:
        run("sequence", data.X[[c for c in data.X.columns if not c.startswith("cascade.")]], sequence_specs(forest))
    if "text" in sections:
        from analysis.text_embed import text_embedding_table

        emb = text_embedding_table(queries, args.cache_dir)
        run("text", no_course.join(emb, how="left"), text_blend_specs(forest))
    oof = pd.concat(parts, ignore_index=True)
    summary = predictions_summary(oof.drop(columns=["section"]).drop_duplicates(["model", "seed", "query_id"]))
    print("\n## Worker-grouped 5-fold CV, pairwise\n")
    print(format_interval_table({"Pairwise": summary}))

    if "fewshot" in sections:
        t = time.perf_counter()
        order = queries.set_index("query_id")["asked_at"].reindex(data.query_ids).rank(method="first").to_numpy()
        specs = {s.name: s for s in base_specs}

        def make(name: str):
            def build(seed: int):
                pipe = specs[name].pipeline(seed, selector_n_jobs=1)
                if specs[name].use_if:
                    pipe.set_params(columns__estimator=_ranking_forest(seed, args.trees))
                return pipe

            return build

        preds = few_shot_predictions(no_course, data.y.to_numpy(), data.groups.to_numpy(), order,
                                     {n: make(n) for n in specs}, ks=(0, 1, 2, 4), seeds=seeds, prior_sd=args.prior_sd,
                                     query_ids=data.query_ids)
        fs = predictions_summary(preds)
        k0 = preds[preds["protocol"] == "k=0"].set_index(["model", "seed", "query_id"])
        print(
            f"\n## Few-shot: first k explicit labels of a new worker set a per-worker logit offset "
            f"(prior sd {args.prior_sd:g})\n"
        )
        print(format_interval_table({"Pairwise few-shot": fs}))
        print("\nIncrement over k = 0 (same rows, paired worker bootstrap):")
        from analysis.reward.intervals import worker_bootstrap

        for (protocol, model), rows in preds.groupby(["protocol", "model"], sort=False):
            if protocol == "k=0":
                continue
            rows = rows.set_index(["model", "seed", "query_id"])
            base = k0.reindex(rows.index)
            ci = worker_bootstrap(((rows["prob_1"] >= 0.5) == rows["y"]).to_numpy(float), rows["worker"].to_numpy(),
                                  baseline_correct=((base["prob_1"] >= 0.5) == base["y"]).to_numpy(float))
            print(f"  {model:20s} {protocol}: {ci['diff']:+.3f} [{ci['diff_lo']:+.3f}, {ci['diff_hi']:+.3f}]")
        timings["fewshot"] = time.perf_counter() - t

    if "calibration" in sections:
        t = time.perf_counter()
        cal = {}
        for method in ("platt", "isotonic"):
            cfg = EvalConfig(**{**config.__dict__, "calibration": method})
            cal[method] = evaluate_table(data.X[no_course.columns], data.y, groups=data.groups,
                                         query_ids=data.query_ids, specs=base_specs, config=cfg).oof
        rows = cal["platt"][["model", "seed", "query_id", "worker", "y", "prob_1"]].copy()
        rows["prob_platt"] = cal["platt"]["prob_1_cal"].to_numpy()
        rows["prob_isotonic"] = cal["isotonic"]["prob_1_cal"].to_numpy()
        table = calibration_table(rows, {"none": "prob_1", "platt": "prob_platt", "isotonic": "prob_isotonic"})
        print("\n## Calibration inside the grouped training folds (ECE, 95 % worker-bootstrap interval)\n")
        print("| Model | Calibration | Accuracy | Brier | ECE [95% CI] | ΔECE vs none [95% CI] |")
        print("|---|---|---|---|---|---|")
        for r in table.itertuples(index=False):
            d = "-" if r.method == "none" else f"{r.ece_diff:+.3f} [{r.ece_diff_lo:+.3f}, {r.ece_diff_hi:+.3f}]"
            print(f"| {r.model} | {r.method} | {r.accuracy:.3f} | {r.brier:.4f} | "
                  f"{r.ece:.3f} [{r.ece_lo:.3f}, {r.ece_hi:.3f}] | {d} |")
        for model in table["model"].unique():
            print(f"chosen by grouped CV (lowest Brier) for {model}: {choose_method(table, model)}")
        if args.figure:
            from analysis.plots.calibration import reliability_diagram

            curves = {}
            for model, part in rows.groupby("model", sort=False):
                for method, col in (("raw", "prob_1"), ("Platt", "prob_platt"), ("isotonic", "prob_isotonic")):
                    curves[f"{model}, {method}"] = (part["y"].to_numpy(), part[col].to_numpy())
            reliability_diagram(curves).savefig(args.figure, dpi=110)
            print(f"reliability diagram: {args.figure}")
        timings["calibration"] = time.perf_counter() - t
    if "transfer" in sections:
        # the split of benchmarks/reward_table.py: half the workers (seed 0) fit, the others score
        from analysis.transfer import transfer_predictions

        t = time.perf_counter()
        workers = sorted(features["worker"].unique())
        train = set(np.random.default_rng(0).choice(workers, size=len(workers) // 2, replace=False))
        is_train = data.groups.isin(train).to_numpy()
        preds = []
        for X, specs in (
            (no_course, base_specs + new_worker_specs(forest)),
            (data.X[[c for c in data.X.columns if not c.startswith("seq.")]], cascade_specs(forest)),
        ):
            preds.append(transfer_predictions(
                X[is_train], data.y[is_train].to_numpy(), data.groups[is_train].to_numpy(), X[~is_train],
                data.y[~is_train].to_numpy(), data.groups[~is_train].to_numpy(), specs=specs, config=config,
                query_ids=data.query_ids[~is_train],
            ))
        preds = pd.concat(preds, ignore_index=True)
        print(f"\n## Dev-internal transfer: fitted on {len(train)} workers, scored on the other "
              f"{len(workers) - len(train)}\n")
        print(format_interval_table({"Pairwise transfer": predictions_summary(preds)}))
        timings["transfer"] = time.perf_counter() - t
    if args.oof:
        oof.to_parquet(args.oof)
    print("\nseconds per section: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    return 0


def _ranking_forest(seed: int, trees: int):
    from analysis.reward.selection import default_ranking_forest

    return default_ranking_forest(seed, 1).set_params(n_estimators=trees)


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
