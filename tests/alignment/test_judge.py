import json
import re

import pytest

from alignment.training.judge import (
    JUDGE_PROMPT,
    anthropic_client_fn,
    build_judge_prompt,
    judge_pair,
    openai_client_fn,
    parse_judgement,
)


@pytest.mark.parametrize(
    ("text", "a", "b", "winner"),
    [
        ('{"score_a": 7, "score_b": 4, "winner": "A", "reason": "x"}', 7, 4, "A"),
        ('Sure!\n```json\n{"score_a": 3, "score_b": 8, "winner": "B"}\n```', 3, 8, "B"),
        ('{"Score A": "6", "Score B": "6", "winner": "tie"}', 6, 6, "tie"),
        ("Score A: 9/10\nScore B: 2/10\nWinner: A", 9, 2, "A"),
        ("**Answer A**: 5\n**Answer B**: 7", 5, 7, "B"),
        ('{"score_a": 8, "score_b": 5, "winner": "B"}', 8, 5, "A"),  # scores decide
    ],
)
def test_parse_judgement(text, a, b, winner):
    j = parse_judgement(text)
    assert (j.score_a, j.score_b, j.winner) == (a, b, winner)


@pytest.mark.parametrize("text", ["I cannot decide.", '{"score_a": 11, "score_b": 3}', ""])
def test_parse_judgement_rejects(text):
    with pytest.raises(ValueError):
        parse_judgement(text)


def test_prompt_is_safe_with_braces():
    p = build_judge_prompt("q {x}", "def f(): return {1: 2}", "B")
    assert "def f(): return {1: 2}" in p and "q {x}" in p
    assert '{"score_a": <1-10>' in p
    assert "{query}" in JUDGE_PROMPT


def _answers_in(prompt):
    a = re.search(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]", prompt, re.S).group(1)
    b = re.search(r"\[Answer B\]\n(.*?)\n\nReply", prompt, re.S).group(1)
    return a, b


def test_judge_pair_cancels_position_bias():
    # A judge that always gives the first slot +2 points: "good" (7) vs "meh" (6).
    quality = {"good": 7, "meh": 6}

    def biased(prompt):
        a, b = _answers_in(prompt)
        return json.dumps({"score_a": quality[a] + 2, "score_b": quality[b], "winner": "A"})

    j = judge_pair(biased, "q", "good", "meh")
    assert not j.consistent and j.winner == "tie"  # orders disagree -> tie
    assert j.score_a == pytest.approx(8.0) and j.score_b == pytest.approx(7.0)  # bias averages out
    j2 = judge_pair(biased, "q", "meh", "good")
    assert j2.score_a == pytest.approx(7.0) and j2.score_b == pytest.approx(8.0)


def test_judge_pair_consistent_winner_mapped_back():
    def fair(prompt):
        a, b = _answers_in(prompt)
        return json.dumps({"score_a": 9 if a == "great" else 3, "score_b": 9 if b == "great" else 3})

    j = judge_pair(fair, "q", "poor", "great")
    assert j.consistent and j.winner == "B" and (j.score_a, j.score_b) == (3, 9)
    assert j.backward.score_b == 9  # mapped back to caller's labels


def test_judge_pair_retries_unparseable_reply():
    replies = iter(["garbage", '{"score_a": 5, "score_b": 5}', '{"score_a": 5, "score_b": 5}'])
    j = judge_pair(lambda p: next(replies), "q", "x", "y")
    assert j.winner == "tie"


def test_openai_client_against_fake_server(fake_llm_server):
    fake_llm_server.reply_fn = lambda msgs, req: '{"score_a": 8, "score_b": 4, "winner": "A"}'
    fake_llm_server.fail_first = 1  # the SDK must retry the injected 500
    fn = openai_client_fn(fake_llm_server.openai_base_url, "gpt-4.1-mini", "test-key", max_retries=2)
    assert parse_judgement(fn("hello")).score_a == 8
    assert fake_llm_server.failures == 1 and len(fake_llm_server.requests) == 2
    body = fake_llm_server.requests[-1]["body"]
    assert body["model"] == "gpt-4.1-mini" and body["messages"][0]["content"] == "hello"
    assert body["temperature"] == 0.0


def test_anthropic_client_against_fake_server(fake_llm_server):
    fn = anthropic_client_fn(fake_llm_server.anthropic_base_url, "claude-x", "test-key", max_retries=0)
    assert fn("ping") == "echo: ping"
    assert fake_llm_server.requests[-1]["path"] == "/v1/messages"
