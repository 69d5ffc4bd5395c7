"""The evaluation job checks its judge before generating, keeps what it generated, and stops
within one generation step when cancelled. Real parts: the smoke-test model, the job runner and a
real local HTTP judge (tests/support/fake_llm_server.py)."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from alignment.models import EvaluationRun, TrainingRun
from alignment.services import evaluation_run_start
from collection.models import LLMModel
from jobs.models import Job
from jobs.services import job_rerun
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.paths import MINI

pytestmark = pytest.mark.django_db

PARAMS = {"n_queries": 3, "max_new_tokens": 8}


@pytest.fixture(autouse=True)
def _site(settings, tmp_path) -> None:
    settings.IFLLM_RUNS_DIR = tmp_path / "runs"
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())


@pytest.fixture
def runs(tmp_path) -> tuple[TrainingRun, TrainingRun]:
    """An SFT and an aligned run whose final checkpoints are the smoke-test model."""
    from alignment.training.smoke import make_smoke_model

    out = []
    for method in ("sft", "rdpo"):
        folder = tmp_path / f"run-{method}"
        make_smoke_model(folder / "final", n_embd=16, n_positions=256)
        out.append(TrainingRun.objects.create(method=method, base_model=str(folder / "final"), output_dir=str(folder)))
    return out[0], out[1]


def _judge_reply(messages, request) -> str:
    prompt = messages[-1]["content"]
    a = re.search(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]", prompt, re.S).group(1)
    b = re.search(r"\[Answer B\]\n(.*?)\n\nReply", prompt, re.S).group(1)
    return json.dumps({"score_a": 1 + len(a) % 10, "score_b": 1 + len(b) % 10, "winner": "A"})


def _closed_port_url() -> str:
    server = FakeLLMServer().start()
    url = server.openai_base_url
    server.stop()  # nothing listens there any more: connection refused
    return url


def _start(runs, judge, capture) -> EvaluationRun:
    sft, aligned = runs
    with capture(execute=True):
        ev = evaluation_run_start(sft_run=sft, aligned_run=aligned, judge=judge, params=PARAMS)
    ev.refresh_from_db()
    ev.job.refresh_from_db()
    return ev


def test_unreachable_judge_is_refused_before_any_generation(runs, django_capture_on_commit_callbacks,
                                                            monkeypatch) -> None:
    from alignment.training import generate

    generated = []
    real = generate.generate_answers
    monkeypatch.setattr(generate, "generate_answers", lambda *a, **k: generated.append(1) or real(*a, **k))
    judge = LLMModel.objects.create(name="gone", provider="openai", model_id="j", base_url=_closed_port_url(),
                                    can_judge=True)
    ev = _start(runs, judge, django_capture_on_commit_callbacks)

    assert ev.job.status == Job.Status.FAILED
    assert ev.job.cause.startswith("alignment.training.judge.JudgeUnavailable: judge 'gone' at http://127.0.0.1:")
    assert "did not answer the check request: APIConnectionError" in ev.job.cause
    assert generated == [] and ev.comparisons == []
    assert ev.job.message.startswith("checking the judge")


def test_reachable_judge_is_accepted_with_one_check_request(runs, django_capture_on_commit_callbacks) -> None:
    with FakeLLMServer(_judge_reply) as server:
        judge = LLMModel.objects.create(name="local", provider="openai", model_id="j",
                                        base_url=server.openai_base_url, can_judge=True)
        ev = _start(runs, judge, django_capture_on_commit_callbacks)
        assert ev.job.status == Job.Status.SUCCEEDED, ev.job.error
        assert len(server.requests) == 1 + 6  # the check, then 3 queries x both orders
        assert "What is 2 + 2?" in server.requests[0]["body"]["messages"][-1]["content"]
    assert len(ev.comparisons) == 3 and all(c["winner"] for c in ev.comparisons)


def test_a_judge_failing_after_generation_keeps_the_answers_and_resume_reuses_them(
    runs, django_capture_on_commit_callbacks
) -> None:
    calls = []

    def check_then_break(messages, request) -> str:
        calls.append(1)
        return "fine" if len(calls) == 1 else "I refuse to give scores."  # unparseable: judging fails

    with FakeLLMServer(check_then_break) as server:
        judge = LLMModel.objects.create(name="flaky", provider="openai", model_id="j",
                                        base_url=server.openai_base_url, can_judge=True)
        ev = _start(runs, judge, django_capture_on_commit_callbacks)
    assert ev.job.status == Job.Status.FAILED and "no scores found in judge reply" in ev.job.cause
    kept = ev.comparisons
    assert len(kept) == 3 and all(c["sft_answer"] is not None and c["dpo_answer"] is not None for c in kept)

    with FakeLLMServer(_judge_reply) as server:
        judge.base_url = server.openai_base_url
        judge.save()
        with django_capture_on_commit_callbacks(execute=True):
            new = job_rerun(job=ev.job)  # Resume on the page
        ev.refresh_from_db()
        new.refresh_from_db()
    assert ev.job_id == new.pk and new.status == Job.Status.SUCCEEDED, new.error
    assert "sft: 3 answers kept from the earlier attempt" in new.log_tail
    assert [c["sft_answer"] for c in ev.comparisons] == [c["sft_answer"] for c in kept]


def test_generation_stops_at_the_step_it_is_told_to(runs) -> None:
    """Must stop: asked after every token, it stops at the first yes. Must not stop: never told."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignment.training.generate import GenerationStopped, generate_answers

    path = Path(runs[0].output_dir) / "final"
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    asked = []

    def stop_at_third() -> bool:
        asked.append(1)
        return len(asked) >= 3

    with pytest.raises(GenerationStopped) as stopped:
        generate_answers(model, tok, ["one", "two"], max_new_tokens=64, batch_size=1, should_stop=stop_at_third)
    assert stopped.value.answers == []  # the cut batch is not kept as if it were an answer
    assert len(asked) == 3  # 1 before the batch + 2 generated tokens: it stopped at the step it was told

    asked.clear()
    answers = generate_answers(model, tok, ["one", "two"], max_new_tokens=5, batch_size=1,
                               should_stop=lambda: asked.append(1) is not None)
    assert len(answers) == 2 and len(asked) >= 2
