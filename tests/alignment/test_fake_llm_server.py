"""The fake server must speak the real SDKs' protocols (it is reused by the chat site tests)."""

import httpx
import pytest
from anthropic import Anthropic
from openai import OpenAI

from tests.support.fake_llm_server import FakeLLMServer


def test_openai_non_streaming_and_streaming(fake_llm_server):
    client = OpenAI(base_url=fake_llm_server.openai_base_url, api_key="x", max_retries=0)
    resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello world"}])
    assert resp.choices[0].message.content == "echo: hello world"
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "abcdefghij"}],
                                            stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert len(pieces) > 2 and "".join(pieces) == "echo: abcdefghij"


def test_openai_raw_sse_ends_with_done(fake_llm_server):
    with httpx.stream("POST", f"{fake_llm_server.openai_base_url}/chat/completions",
                      json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}) as r:
        lines = [line for line in r.iter_lines() if line]
    assert r.headers["content-type"].startswith("text/event-stream")
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"


def test_anthropic_non_streaming_and_streaming(fake_llm_server):
    fake_llm_server.reply_fn = lambda msgs, req: f"{req['model']} says {msgs[-1]['content']}"
    client = Anthropic(base_url=fake_llm_server.anthropic_base_url, api_key="x", max_retries=0)
    msg = client.messages.create(model="claude", max_tokens=50, messages=[{"role": "user", "content": "yo"}])
    assert msg.content[0].text == "claude says yo"
    with client.messages.stream(model="claude", max_tokens=50, messages=[{"role": "user", "content": "stream"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "claude says stream" and final.stop_reason == "end_turn"


def test_fail_first_then_succeed():
    with FakeLLMServer(fail_first=2, fail_status=503) as server:
        r1 = httpx.post(f"{server.openai_base_url}/chat/completions", json={"messages": []})
        r2 = httpx.post(f"{server.openai_base_url}/chat/completions", json={"messages": []})
        r3 = httpx.post(f"{server.openai_base_url}/chat/completions",
                        json={"messages": [{"role": "user", "content": "ok"}]})
    assert (r1.status_code, r2.status_code, r3.status_code) == (503, 503, 200)
    assert r3.json()["choices"][0]["message"]["content"] == "echo: ok"


def test_openai_sdk_gives_up_after_retries():
    from openai import InternalServerError

    with FakeLLMServer(fail_first=5) as server:
        client = OpenAI(base_url=server.openai_base_url, api_key="x", max_retries=1)
        with pytest.raises(InternalServerError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert server.failures == 2
