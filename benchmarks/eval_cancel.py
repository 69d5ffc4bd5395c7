"""Benchmark: how long a cancelled evaluation keeps generating (issue 21, item 11).

    .venv/bin/python benchmarks/eval_cancel.py [--tokens 512] [--batch 8]

The smoke-test model generates one batch of test queries with the evaluation job's own
cancellation check (``alignment.tasks._cancel_check``: the Job row, in a throwaway SQLite
database); another thread cancels the job (``jobs.services.job_cancel``) after 2 s. Prints the
time of one generation step, the time from the cancel to the end of generation, and the time the
same batch takes to finish without the check (what a cancelled evaluation used to keep the CPU
busy for: generation only noticed the cancellation at the next progress report).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
TMP = tempfile.mkdtemp(prefix="ifllm-bench-cancel-")
os.environ["DATABASE_URL"] = f"sqlite:///{TMP}/db.sqlite3"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ifllm_site.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    import django

    django.setup()
    import torch
    from django.core.management import call_command
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignment.tasks import _cancel_check
    from alignment.training.generate import GenerationStopped, generate_answers
    from alignment.training.smoke import make_smoke_model
    from jobs.models import Job
    from jobs.services import job_cancel

    call_command("migrate", verbosity=0)
    torch.set_num_threads(2)
    path = make_smoke_model(Path(TMP) / "smoke")
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    queries = [f"Question number {i}: how do plants grow?" for i in range(args.batch)]
    # min_new_tokens: the random smoke model may emit EOS early; a real evaluation runs long.
    model.generation_config.min_new_tokens = 32
    started = time.perf_counter()
    generate_answers(model, tok, queries, max_new_tokens=32, batch_size=args.batch)
    step_s = (time.perf_counter() - started) / 32
    model.generation_config.min_new_tokens = args.tokens
    started = time.perf_counter()
    generate_answers(model, tok, queries, max_new_tokens=args.tokens, batch_size=args.batch)
    full_s = time.perf_counter() - started

    job = Job.objects.create(kind="alignment.evaluate", status=Job.Status.RUNNING)
    cancelled_at: list[float] = []

    checks = {"n": 0}

    def cancel_later() -> None:
        time.sleep(2.0)
        job_cancel(job=Job.objects.get(pk=job.pk))  # committed when it returns (autocommit)
        cancelled_at.append(time.perf_counter())
        checks["at_cancel"] = checks["n"]

    threading.Thread(target=cancel_later).start()
    should_stop = _cancel_check(job.pk)

    def counted() -> bool:
        checks["n"] += 1
        return should_stop()

    try:
        generate_answers(model, tok, queries, max_new_tokens=args.tokens, batch_size=args.batch, should_stop=counted)
        sys.exit("generation finished: the cancel came too late for this benchmark (use more --tokens)")
    except GenerationStopped:
        stopped = time.perf_counter()
    latency = stopped - cancelled_at[0]
    print(f"batch of {args.batch} queries, up to {args.tokens} new tokens, smoke-test model on CPU")
    print(f"one generation step: {step_s * 1000:.1f} ms")
    print(f"cancel committed -> generation stopped: {latency * 1000:.1f} ms ({latency / step_s:.2f} mean step times)")
    print(f"generation steps begun after the cancel was committed: {checks['n'] - checks['at_cancel']}")
    print(f"the same batch without the check (before): {full_s:.1f} s")


if __name__ == "__main__":
    main()
