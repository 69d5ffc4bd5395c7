"""Feature-table hash and the seed-0 reward table of a release: run before and after a refactor
and ``diff`` the outputs (everything but the ``time`` line must match).

Usage::

    .venv/bin/python benchmarks/behaviour_check.py RELEASE_DIR > before.txt
    # ... change the code ...
    .venv/bin/python benchmarks/behaviour_check.py RELEASE_DIR > after.txt
    diff <(grep -v '^time' before.txt) <(grep -v '^time' after.txt) && echo IDENTICAL
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import pipeline


def main(root: str) -> None:
    t = time.time()
    release = pipeline.load_release(root, n_jobs=1)
    table = pipeline.build_features(release, worker_normalise=True)
    feats = table.features.sort_index(axis=1)
    digest = hashlib.sha256(pd.util.hash_pandas_object(feats.round(10), index=True).values.tobytes()).hexdigest()
    print("features", feats.shape, "hash", digest[:16])
    rows = pipeline.apply_quality_filter(table.features, table.quality)
    print("quality-filtered rows", len(rows))
    config, specs, point_specs = pipeline.reward_run_config({"seeds": [0]})
    run = pipeline.run_reward_table(rows, release.tables.queries, config=config, specs=specs,
                                    pointwise_specs=point_specs)
    print(run.table)
    print("time", round(time.time() - t))


if __name__ == "__main__":
    main(sys.argv[1])
