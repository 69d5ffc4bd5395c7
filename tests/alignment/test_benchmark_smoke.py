"""The GPU benchmark must keep working: run its CPU smoke mode (--tiny) end to end."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_alignment_gpu_benchmark_tiny(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "alignment_gpu.py"), "--tiny", "--steps", "3", "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for name in ("ours_sft", "ours_rdpo"):
        assert result[name]["tokens_per_s"] > 0 and result[name]["peak_mem_gib"] > 0
    trl = result["trl_dpo"]
    # TRL is pinned in requirements.txt: a broken TRL import must fail here, not be skipped.
    assert "skipped" not in trl, trl
    assert trl["tokens_per_s"] > 0 and trl["peak_mem_gib"] > 0, trl
