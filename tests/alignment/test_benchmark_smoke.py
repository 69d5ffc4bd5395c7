"""The GPU benchmark must keep working: run its CPU smoke mode (--tiny) end to end."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_alignment_gpu_benchmark_tiny(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "alignment_gpu.py"), "--tiny", "--steps", "3", "--batch-size", "4",
         "--configs", "trl,before,all,sft", "--json", str(out)],
        capture_output=True, text=True, timeout=400, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())["configs"]
    for name in ("before", "all", "sft"):
        assert result[name]["tokens_per_s"] > 0 and result[name]["peak_mem_gib"] > 0, result[name]
    assert result["all"]["precompute_s"] > 0 and result["before"]["precompute_s"] == 0
    # Same data, same start: the precomputed + packed path trains to the same loss as the old one.
    assert abs(result["all"]["final_loss"] - result["before"]["final_loss"]) < 1e-3
    trl = result["trl"]
    # TRL is pinned in requirements.txt: a broken TRL import must fail here, not be skipped.
    assert trl.get("tokens_per_s", 0) > 0 and trl["peak_mem_gib"] > 0, trl
    assert "| all |" in proc.stdout  # the table
