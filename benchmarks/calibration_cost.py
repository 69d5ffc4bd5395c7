"""Server time of one calibration attempt's body: parsing and validation (issue 22, item 8).

Before the bound, a 2 MB attempt took 1.5-1.8 s of server time (a serializer per gaze sample);
now a body over ``MAX_CALIBRATION_BODY`` is refused after reading at most that many bytes, and
the largest valid attempt is validated in one loop per point. Prints the median of ``--repeat``
runs for: a typical attempt (5 points, 30 Hz), the largest valid one, and a 2 MB one. The
database write (one row) is not included. Run::

    .venv/bin/python benchmarks/calibration_cost.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ifllm_site.settings")


def main() -> None:
    import django

    django.setup()
    from rest_framework.exceptions import APIException

    from collection.api import MAX_CALIBRATION_POINTS, MAX_POINT_SAMPLES, CalibrationAttemptCreateApi
    from collection.parsers import SafeJSONParser
    from tests.site.test_calibration_bounds import attempt

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    view = CalibrationAttemptCreateApi()
    cases = {
        "typical (5 points, 30 Hz)": attempt(5, 45),
        f"largest valid ({MAX_CALIBRATION_POINTS} points x {MAX_POINT_SAMPLES} samples)":
            attempt(MAX_CALIBRATION_POINTS, MAX_POINT_SAMPLES),
        "2 MB (5 points x 9,000 samples)": attempt(5, 9000),
    }
    for name, body in cases.items():
        raw = json.dumps(body).encode()
        times, outcome = [], ""
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            try:
                data = SafeJSONParser().parse(io.BytesIO(raw), "application/json", {"view": view})
                ser = CalibrationAttemptCreateApi.InputSerializer(data=data)
                outcome = "valid" if ser.is_valid() else "400"
            except APIException as exc:
                outcome = str(exc.status_code)
            times.append(time.perf_counter() - t0)
        print(f"{name}: {len(raw) / 1e6:.2f} MB, {statistics.median(times) * 1000:.1f} ms median "
              f"of {args.repeat} ({outcome})")


if __name__ == "__main__":
    main()
