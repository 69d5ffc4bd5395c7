"""Accuracy against forest size under worker-grouped CV: how many trees the reward table needs.

Usage::

    .venv/bin/python benchmarks/reward_trees.py RELEASE_DIR [--trees 50,100,200,500] [--seeds 0,1,2]

Prints, per tree count (ranking forest and classifier alike), the grouped pairwise accuracy of
the length-only model and RF + IF (mean ± std over seeds) and the seconds it took. The default
``trees`` of the reward-model run is the smallest count whose accuracy is within the
seed-to-seed spread of the 500-tree figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import pipeline
from analysis.reward import EvalConfig, ForestParams, ModelSpec
from analysis.reward.evaluate import evaluate_table
from analysis.reward.models import RF_IF, RF_TEXT_LENGTHS
from benchmarks.reward_table import load_features


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--trees", default="50,100,200,500")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--cache-dir", default="/tmp/ifllm-reward-bench")
    args = parser.parse_args(argv)
    features, queries = load_features(args.root, args.cache_dir)
    data = pipeline.labelled_set(features, queries, "pairwise")
    seeds = tuple(int(s) for s in args.seeds.split(","))
    print(f"pairwise rows {len(data.y)}, workers {data.groups.nunique()}, seeds {seeds}")
    print(f"{'trees':>6} {'lengths':>15} {'RF + IF':>15} {'seconds':>8}")
    for trees in (int(t) for t in args.trees.split(",")):
        rf = ForestParams(n_estimators=trees).classifier
        specs = [ModelSpec(RF_TEXT_LENGTHS, keep_groups=("text",), make_classifier=rf),
                 ModelSpec(RF_IF, use_if=True, make_classifier=rf)]
        cfg = EvalConfig(seeds=seeds, protocols=("grouped",), selector_n_estimators=trees, calibration="none")
        t = time.perf_counter()
        res = evaluate_table(data.X, data.y, groups=data.groups, query_ids=data.query_ids, specs=specs, config=cfg)
        acc = res.scores.groupby("model")["accuracy"].agg(["mean", "std"])
        cells = [f"{acc.loc[m, 'mean']:.4f}±{acc.loc[m, 'std']:.4f}" for m in (RF_TEXT_LENGTHS, RF_IF)]
        print(f"{trees:>6} {cells[0]:>15} {cells[1]:>15} {time.perf_counter() - t:8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
