"""The default reward-model run on a whole release, timed by stage (issue 14: under 60 s).

Usage::

    .venv/bin/python benchmarks/reward_table.py RELEASE_DIR [--trees N] [--seeds 0,1,2]
        [--calibration platt|isotonic|none] [--calibration-fit crossfit|inner] [--n-jobs 2]
        [--cache-dir DIR] [--no-transfer]

Loading and matching (minutes on the dev release) are cached as Parquet in ``--cache-dir`` the
way the admin caches them under ``var/cache/features``; the timed part is what a reward-model
run does after that: pairwise and pointwise tables under three protocols and the Likert
regression, with the same parameters as the admin default (``analysis.services.DEFAULT_PARAMS``).

Prints the table, the Likert R², the stage timings, the wall time and the CPU seconds of the
reward table (all threads of this process: on an otherwise idle 2-core machine the wall time is
about CPU / 2; on a shared one the wall time grows with the other load, the CPU seconds do not).
Before/after (dev release, 63 workers, 401 pairwise + 275 balanced pointwise rows after the
quality filter): see the README's analysis section.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import pipeline


def load_features(root: str, cache_dir: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quality-filtered, worker-normalised feature table and queries of a release (cached)."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:12]
    feats_path, queries_path = cache / f"features-{key}.parquet", cache / f"queries-{key}.parquet"
    if feats_path.exists() and queries_path.exists():
        return pd.read_parquet(feats_path), pd.read_parquet(queries_path)
    release = pipeline.load_release(root, n_jobs=2)
    table = pipeline.build_features(release, worker_normalise=True)
    features = pipeline.apply_quality_filter(table.features, table.quality)
    features.to_parquet(feats_path)
    release.tables.queries.to_parquet(queries_path)
    return features, release.tables.queries


def main(argv: list[str] | None = None) -> int:
    from analysis.pipeline import reward_run_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--trees", type=int)
    parser.add_argument("--seeds")
    parser.add_argument("--calibration")
    parser.add_argument("--selector-trees", type=int)
    parser.add_argument("--calibration-fit")
    parser.add_argument("--n-jobs", type=int)
    parser.add_argument("--cache-dir", default="/tmp/ifllm-reward-bench")
    parser.add_argument("--no-transfer", action="store_true",
                        help="skip the dev-internal transfer (fit on half the workers, score on the other half)")
    args = parser.parse_args(argv)
    t = time.perf_counter()
    features, queries = load_features(args.root, args.cache_dir)
    print(f"features {features.shape} ({time.perf_counter() - t:.1f} s, cached after the first run)")
    overrides = {
        k: v
        for k, v in {
            "trees": args.trees,
            "calibration": args.calibration,
            "calibration_fit": args.calibration_fit,
            "selector_trees": args.selector_trees,
            "n_jobs": args.n_jobs,
            "seeds": args.seeds and [int(s) for s in args.seeds.split(",")],
        }.items()
        if v
    }
    config, specs, pointwise_specs = reward_run_config(overrides)
    print(f"config: {config}")
    t, cpu = time.perf_counter(), time.process_time()
    run = pipeline.run_reward_table(features, queries, config=config, specs=specs, pointwise_specs=pointwise_specs)
    total, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(run.table)
    if not run.likert.empty:
        r2 = run.likert.groupby("protocol")["r2"].agg(["mean", "std"])
        print("\nPointwise Likert regression R^2: "
              + ", ".join(f"{p} {row['mean']:.4f}±{row['std']:.4f}" for p, row in r2.iterrows()))
    for setting, result in run.results.items():
        cal = result.scores.dropna(subset=["accuracy_cal"]) if "accuracy_cal" in result.scores else None
        if cal is not None and len(cal):
            agg = cal.groupby("model", sort=False)[["accuracy_cal", "ece", "ece_cal"]].mean()
            print(f"\n{setting}, grouped, calibrated (mean over seeds):")
            print(agg.round(4).to_string())
    print("\nstage timings (s):")
    for name, value in run.timings.items():
        print(f"  {name:45s} {value:8.1f}")
    print(f"  {'TOTAL reward table (wall)':45s} {total:8.1f}")
    print(f"  {'CPU seconds (all threads)':45s} {cpu:8.1f}")
    print(f"  {'idle 2-core estimate (CPU / 2)':45s} {cpu / 2:8.1f}")
    if not args.no_transfer:
        from analysis.reward.summary import format_interval_table
        from analysis.transfer import transfer_settings

        workers = sorted(features["worker"].unique())
        rng = np.random.default_rng(0)
        train = set(rng.choice(workers, size=len(workers) // 2, replace=False))
        t = time.perf_counter()
        _, summaries = transfer_settings(
            features[features["worker"].isin(train)], queries, features[~features["worker"].isin(train)], queries,
            config=config, specs=specs,
        )
        print(f"\nDev-internal transfer: fitted on {len(train)} workers, scored on the other "
              f"{len(workers) - len(train)} ({time.perf_counter() - t:.1f} s)")
        print(format_interval_table(summaries))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
