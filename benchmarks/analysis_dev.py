"""Dev release -> matched samples -> features -> Table 2 under all protocols, with stage timings.

Usage::

    .venv/bin/python benchmarks/analysis_dev.py [/tmp/dev] [--seeds 0,1,2] [--trees 500]
        [--no-text] [--quality-filter] [--cache-dir DIR]

Text embeddings are cached in ``--cache-dir`` (first run encodes ~3,500 texts, about a minute).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import pipeline
from analysis.reward import EvalConfig, ForestParams, default_specs, text_specs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default="/tmp/dev")
    parser.add_argument("--seeds", default="0,1", help="CV repetitions (0,1 keeps the run under 3 min)")
    parser.add_argument("--trees", type=int, default=200, help="trees of every forest (library default 500)")
    parser.add_argument("--no-worker-normalise", action="store_true",
                        help="without the worker-relative copies of absolute time/count features")
    parser.add_argument("--no-text", action="store_true", help="skip the sentence-embedding models")
    parser.add_argument("--quality-filter", action="store_true", help="drop tasks under the paper's thresholds")
    parser.add_argument("--cache-dir", default=os.environ.get("IFLLM_CACHE", "/tmp/ifllm-analysis-cache"))
    parser.add_argument("--oof", help="write out-of-fold predictions to this parquet file")
    args = parser.parse_args(argv)

    timings: dict[str, float] = {}
    t = time.perf_counter()
    release = pipeline.load_release(args.root, n_jobs=2)
    timings["load (tables + all task folders, 2 processes)"] = time.perf_counter() - t
    n_samples = sum(len(s) for _, _, s in release.tasks)
    print(f"loaded {len(release.tasks)} tasks, {n_samples:,} samples, {len(release.tables.queries)} queries")

    t = time.perf_counter()
    table = pipeline.build_features(release, worker_normalise=not args.no_worker_normalise)
    timings["match + features"] = time.perf_counter() - t
    features = table.features
    print(f"features: {features.shape[0]} turns x {features.shape[1]} columns")
    print("matching rules (sample rows):", table.match_report)
    if args.quality_filter:
        before = len(features)
        features = pipeline.apply_quality_filter(features, table.quality)
        print(f"quality filter: kept {len(features)} of {before} turns")

    embeddings = None
    forest = ForestParams(n_estimators=args.trees)
    specs = default_specs(forest)
    if not args.no_text:
        from analysis.text_embed import text_embedding_table

        t = time.perf_counter()
        embeddings = text_embedding_table(release.tables.queries, args.cache_dir)
        timings["text embeddings (cached after first run)"] = time.perf_counter() - t
        specs += text_specs()

    seeds = tuple(int(s) for s in args.seeds.split(","))
    t = time.perf_counter()
    run = pipeline.run_reward_table(
        features,
        release.tables.queries,
        config=EvalConfig(seeds=seeds, selector_n_estimators=args.trees,
                          regression_n_estimators=max(50, args.trees // 2)),
        specs=specs,
        pointwise_specs=[s for s in default_specs(forest) if s.name.startswith("RF")],
        text_embeddings=embeddings,
    )
    timings["reward models (all protocols)"] = time.perf_counter() - t
    for key, value in run.timings.items():
        timings[f"  of which {key}"] = value

    print()
    print(run.table)
    if not run.likert.empty:
        r2 = run.likert.groupby("protocol")["r2"].agg(["mean", "std"])
        print("\nPointwise Likert regression (RF regressor), R^2:")
        for protocol, row in r2.iterrows():
            print(f"  {protocol}: {row['mean']:.4f}±{row['std']:.4f}")
    low = run.oof[run.oof["p_winner"] < 0.5]
    print(f"\nout-of-fold rows: {len(run.oof)} (p_winner < 0.5: {len(low)})")
    if args.oof:
        run.oof.to_parquet(args.oof, index=False)
    print("\nstage timings (s):")
    for name, value in timings.items():
        print(f"  {name:55s} {value:7.1f}")
    print(f"  {'total':55s} {sum(v for k, v in timings.items() if not k.startswith('  ')):7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
