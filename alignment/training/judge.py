"""LLM-as-judge for SFT vs (r)DPO answers, with position bias cancelled.

The paper asks GPT-4.1-mini for an overall score per answer and counts equal scores as a tie
(section 6.2); the original judge saw ONE order only, so any preference of the judge for the
first (or second) slot leaked into the win rates.  :func:`judge_pair` asks both orders,
averages each answer's two scores and declares a winner only when both orders agree.

``client_fn(prompt) -> text`` is any provider; :func:`openai_client_fn` and
:func:`anthropic_client_fn` wrap the official SDKs (which retry transient errors themselves).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "JUDGE_PROMPT",
    "Judgement",
    "PairJudgement",
    "build_judge_prompt",
    "parse_judgement",
    "judge_pair",
    "openai_client_fn",
    "anthropic_client_fn",
    "demo_judge_fn",
    "check_judge",
    "JudgeUnavailable",
]

ClientFn = Callable[[str], str]
Winner = Literal["A", "B", "tie"]

#: Our rubric, written in the spirit of the paper's (its verbatim prompt is not reproduced).
JUDGE_PROMPT = """You are an impartial expert judge comparing two AI assistant answers to the same user query.

Judge OVERALL QUALITY, considering in this order:
1. Correctness: factual accuracy; penalise errors and invented facts heavily.
2. Helpfulness and relevance: does it address what the user actually asked? If the query is
   ambiguous (it may be a follow-up whose context is missing), any reasonable reading is fine.
3. Informativeness: useful detail and completeness, without padding.
4. Clarity: coherent, well organised, no repetition or degenerate text; an answer that is cut
   off or rambles should lose points.
Do NOT prefer an answer because it is longer, or because of its position (A or B).

Scale for each answer, integers 1-10:
1-2 = wrong, incoherent or off-topic; 3-4 = major problems; 5-6 = acceptable with clear flaws;
7-8 = good, minor issues; 9-10 = excellent, hard to improve.
If the two answers are of equal quality, give them the same score and winner "tie".

[User query]
{query}

[Answer A]
{answer_a}

[Answer B]
{answer_b}

Reply with ONLY a JSON object, no other text:
{{"score_a": <1-10>, "score_b": <1-10>, "winner": "A" | "B" | "tie", "reason": "<one sentence>"}}
"""


@dataclass(frozen=True)
class Judgement:
    """One judge reply for one order of presentation."""

    score_a: float
    score_b: float
    winner: Winner
    raw: str


@dataclass(frozen=True)
class PairJudgement:
    """Both orders combined; scores and winner refer to the caller's answer_a / answer_b."""

    score_a: float  # mean of answer_a's score over both orders
    score_b: float
    winner: Winner  # "A"/"B" only if both orders agree, else "tie"
    consistent: bool  # whether both orders named the same winner
    forward: Judgement  # answer_a shown as A
    backward: Judgement  # answer_a shown as B (already mapped back: score_a is answer_a's)


def build_judge_prompt(query: str, answer_a: str, answer_b: str, template: str = JUDGE_PROMPT) -> str:
    """Fill the rubric; ``str.format`` is not used on user text, so braces in answers are safe."""
    return (
        template.replace("{{", "\x00").replace("}}", "\x01")
        .replace("{query}", query).replace("{answer_a}", answer_a).replace("{answer_b}", answer_b)
        .replace("\x00", "{").replace("\x01", "}")
    )


_SCORE_PATTERNS = {
    "a": [r"score[_\s-]*a\W{0,5}(\d+(?:\.\d+)?)", r"answer\s*a\W{0,5}(?:score\W{0,5})?(\d+(?:\.\d+)?)\s*(?:/\s*10)?"],
    "b": [r"score[_\s-]*b\W{0,5}(\d+(?:\.\d+)?)", r"answer\s*b\W{0,5}(?:score\W{0,5})?(\d+(?:\.\d+)?)\s*(?:/\s*10)?"],
}


def _winner_from_scores(a: float, b: float) -> Winner:
    return "A" if a > b else "B" if b > a else "tie"


def _check_score(x: float) -> float:
    if not 1 <= x <= 10:
        raise ValueError(f"score {x} outside 1-10")
    return x


def parse_judgement(text: str) -> Judgement:
    """Parse a judge reply: a JSON object (bare, in ```json fences, or inside prose), or
    "Score A: 7 ... Score B: 5 ... Winner: A" style text as a fallback.

    The winner, when missing or unreadable, follows the scores (equal scores = tie).  When
    the stated winner contradicts the scores, the scores win: they are what the paper uses.
    Raises ValueError if the scores cannot be found or lie outside 1-10.
    """
    for match in re.finditer(r"\{[^{}]*\}", text, flags=re.S):
        try:
            obj = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        keys = {k.lower().replace(" ", "_"): v for k, v in obj.items()}
        if "score_a" in keys and "score_b" in keys:
            a = _check_score(float(keys["score_a"]))
            b = _check_score(float(keys["score_b"]))
            return Judgement(a, b, _winner_from_scores(a, b), text)
    lowered = text.lower()
    scores = {}
    for side, patterns in _SCORE_PATTERNS.items():
        for pattern in patterns:
            m = re.search(pattern, lowered)
            if m:
                scores[side] = _check_score(float(m.group(1)))
                break
    if len(scores) != 2:
        raise ValueError(f"no scores found in judge reply: {text[:200]!r}")
    return Judgement(scores["a"], scores["b"], _winner_from_scores(scores["a"], scores["b"]), text)


def _ask(client_fn: ClientFn, prompt: str, retries: int) -> Judgement:
    last: ValueError | None = None
    for _ in range(retries + 1):
        try:
            return parse_judgement(client_fn(prompt))
        except ValueError as exc:  # unparseable reply: ask again
            last = exc
    assert last is not None
    raise last


class JudgeUnavailable(RuntimeError):
    """The judge did not answer the check question: nothing should be generated for it."""


#: The check question: a pair any judge can score, short enough to cost nothing.
CHECK_QUERY, CHECK_A, CHECK_B = "What is 2 + 2?", "4", "5"


def check_judge(client_fn: ClientFn, *, name: str = "the judge") -> str:
    """Ask the judge one tiny comparison and return its reply; raise :class:`JudgeUnavailable`.

    WHY: generating the answers of two models takes minutes to hours and the judge is only
    needed afterwards, so an unreachable endpoint, a wrong model id or a refused key used to be
    found after all that work. One request before generation finds them at once. The reply is
    not required to parse: a judge that replies with prose is still reachable, and the
    comparisons parse with retries.
    """
    try:
        reply = client_fn(build_judge_prompt(CHECK_QUERY, CHECK_A, CHECK_B))
    except Exception as exc:  # any SDK/network error: the cause is what staff need to see
        raise JudgeUnavailable(f"{name} did not answer the check request: {type(exc).__name__}: {exc}") from exc
    if not str(reply or "").strip():
        raise JudgeUnavailable(f"{name} answered the check request with an empty reply")
    return str(reply)


def judge_pair(
    client_fn: ClientFn, query: str, answer_a: str, answer_b: str, *, parse_retries: int = 1,
    template: str = JUDGE_PROMPT,
) -> PairJudgement:
    """Judge ``answer_a`` vs ``answer_b`` in both orders and cancel position bias."""
    fwd = _ask(client_fn, build_judge_prompt(query, answer_a, answer_b, template), parse_retries)
    rev = _ask(client_fn, build_judge_prompt(query, answer_b, answer_a, template), parse_retries)
    # Map the reversed judgement back to the caller's labels.
    back_winner: Winner = {"A": "B", "B": "A", "tie": "tie"}[rev.winner]  # type: ignore[assignment]
    backward = Judgement(rev.score_b, rev.score_a, back_winner, rev.raw)
    consistent = fwd.winner == backward.winner
    winner: Winner = fwd.winner if consistent else "tie"
    return PairJudgement(
        score_a=(fwd.score_a + backward.score_a) / 2,
        score_b=(fwd.score_b + backward.score_b) / 2,
        winner=winner,
        consistent=consistent,
        forward=fwd,
        backward=backward,
    )


def openai_client_fn(
    base_url: str | None, model: str, api_key: str, *, temperature: float = 0.0, max_tokens: int = 512,
    timeout: float = 120.0, max_retries: int = 5,
) -> ClientFn:
    """A ``client_fn`` for any OpenAI-compatible chat-completions endpoint (temperature 0)."""
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)

    def call(prompt: str) -> str:
        resp = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            temperature=temperature,
            max_tokens=max_tokens,
        )
        return resp.choices[0].message.content or ""

    return call


def anthropic_client_fn(
    base_url: str | None, model: str, api_key: str, *, temperature: float | None = None, max_tokens: int = 512,
    timeout: float = 120.0, max_retries: int = 5,
) -> ClientFn:
    """A ``client_fn`` for the Anthropic Messages API.

    The installed SDK's ``messages.create`` has no ``temperature`` argument; when one is given
    it is sent through ``extra_body``.
    """
    from anthropic import Anthropic

    client = Anthropic(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
    extra_body = {"temperature": temperature} if temperature is not None else None

    def call(prompt: str) -> str:
        resp = client.messages.create(
            model=model,
            max_tokens=max_tokens,
            messages=[{"role": "user", "content": prompt}],
            extra_body=extra_body,
        )
        return "".join(block.text for block in resp.content if getattr(block, "type", "") == "text")

    return call


def _demo_score(query: str, answer: str) -> int:
    words = re.findall(r"[a-z]+", answer.lower())
    if not words:
        return 1
    topical = len(set(re.findall(r"[a-z]{4,}", query.lower())) & set(words))
    variety = len(set(words)) / len(words)  # degenerate, repeating text scores low
    return max(1, min(10, 1 + round(5 * variety) + min(topical, 4)))


def demo_judge_fn(prompt: str) -> str:
    """An OFFLINE, heuristic judge for trying the evaluation loop without an API (smoke tests).

    It answers in the real judge's format from two crude cues (words of the query used in the
    answer, and how little the answer repeats itself): deterministic and free, and of no value
    as an evaluation. Never report its numbers.
    """
    m = re.search(r"\[User query\]\n(.*?)\n\n\[Answer A\]\n(.*?)\n\n\[Answer B\]\n(.*?)\n\nReply", prompt, re.S)
    query, a, b = m.groups() if m else ("", prompt, "")
    sa, sb = _demo_score(query, a), _demo_score(query, b)
    winner = "A" if sa > sb else "B" if sb > sa else "tie"
    return json.dumps({"score_a": sa, "score_b": sb, "winner": winner, "reason": "offline demo heuristic"})
