"""Model clients and the answer stream, against a real local HTTP server speaking the OpenAI and
Anthropic streaming protocols (tests/support/fake_llm_server.py), not patched SDK objects."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.urls import reverse

from collection.llm import ProviderError, client_for
from collection.llm.clients import DemoClient
from collection.models import LLMModel, Mode, Task, Turn
from collection.services import study
from collection.services.chat import conversation_for_side
from tests.support.fake_llm_server import FakeLLMServer, fake_llm_server  # noqa: F401


def collect(client, messages) -> str:
    async def run() -> str:
        return "".join([piece async for piece in client.stream(messages)])

    return async_to_sync(run)()


def model(provider: str, server: FakeLLMServer, name: str = "m", **kw) -> LLMModel:
    base = server.openai_base_url if provider == "openai" else server.anthropic_base_url
    return LLMModel(name=name, provider=provider, model_id=f"{name}-id", base_url=base, **kw)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_streaming_clients_against_real_server(fake_llm_server, provider):  # noqa: F811
    fake_llm_server.reply_fn = lambda msgs, req: f"{req['model']} answers: {msgs[-1]['content']} ünïcode ✓"
    text = collect(client_for(model(provider, fake_llm_server, max_tokens=123)),
                   [{"role": "user", "content": "hello"}])
    assert text == "m-id answers: hello ünïcode ✓"
    req = fake_llm_server.requests[-1]
    assert req["body"]["stream"] is True and req["body"]["max_tokens"] == 123
    assert "system" not in req["body"]  # no system prompt, as in the paper


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_one_retry_then_error(provider):
    with FakeLLMServer(fail_first=1, fail_status=503) as server:
        assert collect(client_for(model(provider, server)), [{"role": "user", "content": "x"}]) == "echo: x"
        assert server.failures == 1
    with FakeLLMServer(fail_first=5, fail_status=500) as server:
        with pytest.raises(ProviderError):
            collect(client_for(model(provider, server)), [{"role": "user", "content": "x"}])
        assert server.failures == 2  # the first try and exactly one retry


def test_missing_api_key_env_is_a_provider_error(fake_llm_server, monkeypatch):  # noqa: F811
    monkeypatch.delenv("IFLLM_TEST_KEY", raising=False)
    with pytest.raises(ProviderError, match="IFLLM_TEST_KEY"):
        client_for(model("openai", fake_llm_server, api_key_env="IFLLM_TEST_KEY"))
    monkeypatch.setenv("IFLLM_TEST_KEY", "secret-key")
    collect(client_for(model("openai", fake_llm_server, api_key_env="IFLLM_TEST_KEY")),
            [{"role": "user", "content": "k"}])
    headers = {k.lower(): v for k, v in fake_llm_server.requests[-1]["headers"].items()}
    assert headers["authorization"] == "Bearer secret-key"


def test_demo_model_is_deterministic_and_streams():
    m = LLMModel(name="demo", provider="demo", model_id="demo-1")
    messages = [{"role": "user", "content": "Why is the sky blue?"}]
    a = collect(DemoClient(m, delay_s=0), messages)
    assert a == collect(DemoClient(m, delay_s=0), messages) == DemoClient(m).answer(messages)
    other = LLMModel(name="demo2", provider="demo", model_id="demo-2")
    assert collect(DemoClient(other, delay_s=0), messages) != a
    bullets = collect(DemoClient(m, delay_s=0), [{"role": "user", "content": "x? Please answer using bullet points."}])
    assert bullets.startswith("- ")


def _events(client, task: Task, turn: Turn) -> list[dict]:
    async def run() -> list[dict]:
        ac = AsyncClient()
        ac.cookies = client.cookies
        r = await ac.post(reverse("collection:turn_answer", kwargs={"task_id": task.pk, "turn_id": turn.pk}))
        assert r.status_code == 200 and r["Content-Type"].startswith("text/event-stream")
        body = b"".join([chunk async for chunk in r.streaming_content]).decode()
        return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]

    return async_to_sync(run)()


@pytest.fixture
def pairwise_chat(chatting, fake_llm_server):  # noqa: F811
    client, task = chatting
    fake_llm_server.delay_s = 0.02
    fake_llm_server.chunk_size = 3
    fake_llm_server.reply_fn = lambda msgs, req: f"[{req['model']}] turn {len(msgs) // 2}: {msgs[-1]['content']}"
    a = LLMModel.objects.create(name="gpt-fake", provider="openai", model_id="gpt-x",
                                base_url=fake_llm_server.openai_base_url)
    b = LLMModel.objects.create(name="claude-fake", provider="anthropic", model_id="claude-x",
                                base_url=fake_llm_server.anthropic_base_url)
    Task.objects.filter(pk=task.pk).update(mode=Mode.PAIRWISE, model_1=a.name, model_2=b.name)
    task.refresh_from_db()
    return client, task, fake_llm_server


def test_pairwise_streams_concurrently_and_stores_exact_text(pairwise_chat):
    client, task, server = pairwise_chat
    turn = study.turn_create(task=task, query="What is it about?")
    events = _events(client, task, turn)
    deltas = [e["side"] for e in events if e["event"] == "delta"]
    # Both answers arrive interleaved: the two calls run at the same time, not one after the other.
    first_2, last_1 = deltas.index(2), len(deltas) - 1 - deltas[::-1].index(1)
    assert first_2 < last_1
    turn.refresh_from_db()
    done = {e["side"]: e["text"] for e in events if e["event"] == "done"}
    assert done == {1: turn.response_1, 2: turn.response_2}
    for side in (1, 2):  # the streamed pieces add up to exactly the stored text
        assert "".join(e["text"] for e in events if e["event"] == "delta" and e["side"] == side) == done[side]
    assert turn.response_1.startswith("[gpt-x]") and turn.response_2.startswith("[claude-x]")
    assert events[-1] == {"event": "end"}


def test_each_model_sees_its_own_conversation(pairwise_chat):
    client, task, server = pairwise_chat
    t0 = study.turn_create(task=task, query="First?")
    _events(client, task, t0)
    study.turn_rate(turn=t0, ratings={"likert_1": 3, "likert_2": 4, "preferred": 2})
    t1 = study.turn_create(task=task, query="Second?")
    _events(client, task, t1)
    bodies = {r["body"]["model"]: r["body"]["messages"] for r in server.requests[-2:]}
    t0.refresh_from_db()
    assert bodies["gpt-x"][1] == {"role": "assistant", "content": t0.response_1}
    assert bodies["claude-x"][1]["content"] == [{"type": "text", "text": t0.response_2}] or \
        bodies["claude-x"][1]["content"] == t0.response_2
    assert bodies["gpt-x"][-1]["content"] == t1.query_sent
    assert conversation_for_side(turns=[t0, t1], turn=t1, side=2)[1]["content"] == t0.response_2


def test_provider_error_recorded_apart_and_retry_fills_only_that_side(pairwise_chat):
    client, task, server = pairwise_chat
    LLMModel.objects.filter(name="claude-fake").update(base_url="http://127.0.0.1:9")  # nothing listens
    turn = study.turn_create(task=task, query="Hello?")
    events = _events(client, task, turn)
    assert [e for e in events if e["event"] == "error"][0]["side"] == 2
    turn.refresh_from_db()
    assert turn.response_1 and turn.response_2 == "" and turn.error_2
    stored_1 = turn.response_1
    LLMModel.objects.filter(name="claude-fake").update(base_url=server.anthropic_base_url)
    n_before = len(server.requests)
    events = _events(client, task, turn)  # the page's "Try again"
    turn.refresh_from_db()
    assert turn.response_1 == stored_1 and turn.response_2.startswith("[claude-x]") and turn.error_2 == ""
    assert len(server.requests) == n_before + 1  # only the failed side was asked again
    assert {e["side"] for e in events if e["event"] == "done"} == {1, 2}


def test_answer_stream_only_for_own_chatting_task(pairwise_chat, topics):
    client, task, server = pairwise_chat
    turn = study.turn_create(task=task, query="x")

    async def run(cookies) -> int:
        ac = AsyncClient()
        if cookies is not None:
            ac.cookies = cookies
        r = await ac.post(reverse("collection:turn_answer", kwargs={"task_id": task.pk, "turn_id": turn.pk}))
        return r.status_code

    assert async_to_sync(run)(None) == 403
    Task.objects.filter(pk=task.pk).update(worker=study.worker_get_or_create(platform="lab",
                                                                             platform_worker_id="other"))
    assert async_to_sync(run)(client.cookies) == 404


def test_twenty_concurrent_streams_of_one_turn_make_one_call_per_side(pairwise_chat):
    """Issue 22, item 4: 20 concurrent requests for one turn's answer stream made 20 paid model
    calls. Now one stream claims each side's call; the others wait and replay the stored answer."""
    client, task, server = pairwise_chat
    server.delay_s = 0.05
    turn = study.turn_create(task=task, query="Once only?")
    n_before = len(server.requests)

    async def one() -> list[dict]:
        ac = AsyncClient()
        ac.cookies = client.cookies
        r = await ac.post(reverse("collection:turn_answer", kwargs={"task_id": task.pk, "turn_id": turn.pk}))
        assert r.status_code == 200
        body = b"".join([chunk async for chunk in r.streaming_content]).decode()
        return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]

    async def run() -> list[list[dict]]:
        return await asyncio.gather(*[one() for _ in range(20)])

    streams = async_to_sync(run)()
    assert len(server.requests) - n_before == 2  # one call per side (pairwise), not 40
    turn.refresh_from_db()
    for events in streams:
        assert {e["side"]: e["text"] for e in events if e["event"] == "done"} == {1: turn.response_1,
                                                                               2: turn.response_2}
        assert events[-1] == {"event": "end"}
    assert turn.answering_1 is None and turn.answering_2 is None


def test_a_claim_left_by_a_closed_stream_is_given_back(pairwise_chat):
    """The claiming stream goes away before the answer is stored: the next request answers."""
    client, task, server = pairwise_chat
    turn = study.turn_create(task=task, query="Left early?")

    async def open_and_leave() -> None:
        ac = AsyncClient()
        ac.cookies = client.cookies
        r = await ac.post(reverse("collection:turn_answer", kwargs={"task_id": task.pk, "turn_id": turn.pk}))
        stream = r.streaming_content.__aiter__()
        await stream.__anext__()  # ": stream open"
        await stream.__anext__()  # a first delta: the calls are running
        await stream.aclose()

    async_to_sync(open_and_leave)()
    turn.refresh_from_db()
    assert turn.answering_1 is None and turn.answering_2 is None
    events = _events(client, task, turn)
    assert {e["side"] for e in events if e["event"] == "done"} == {1, 2}
