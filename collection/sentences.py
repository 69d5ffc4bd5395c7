"""The post-task "copy the most important sentence" check (pure: no Django).

The copy tells which sentence a worker found most important, so it has to *be* one sentence: a
pasted paragraph or whole answer says nothing about importance. The rule, in words a worker can
follow: the copy is found in one of the answers, lies inside a single sentence of it, and is at
least half of that sentence (a fragment of a few words is not "a sentence" either).

Sentences are split where a line ends (bullet points are one line each) and where ``.``, ``!``,
``?`` or ``…`` (with any closing quote or bracket) is followed by white space and a character that
can start a sentence (an upper-case letter, a digit, an opening quote/bracket, or a bullet). A
lower-case letter after the full stop does not start a sentence, so "e.g. this" stays one.
"""

from __future__ import annotations

import re

#: Shortest copy accepted at all (characters, white space collapsed).
MIN_CHARS = 5
#: Share of its sentence a copy must cover.
MIN_SHARE = 0.5

_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[A-Z0-9\"'“‘(\[•*–-])")


def normalise(text: str) -> str:
    """White space collapsed to single spaces (copying from a page changes line breaks)."""
    return " ".join(text.split())


def split_sentences(text: str) -> list[str]:
    """The sentences of an answer, each with white space collapsed; empty pieces dropped."""
    out = []
    for line in text.splitlines():
        for piece in _BOUNDARY.split(line):
            piece = normalise(piece)
            if piece:
                out.append(piece)
    return out


def _core(text: str) -> str:
    """The sentence without bullets and end punctuation, for comparing lengths."""
    return text.strip().lstrip("-•*–").strip().rstrip(".!?…\"'”’)").strip()


def copy_problem(copy: str, answers: list[str]) -> str | None:
    """Why ``copy`` is not one sentence of one of ``answers``; None when it is.

    Returns ``"short"`` (under MIN_CHARS), ``"not_found"`` (in no answer), ``"several"`` (it runs
    over the end of a sentence: more than one sentence, e.g. a whole answer) or ``"fragment"``
    (inside one sentence, but less than MIN_SHARE of it).
    """
    copy = normalise(copy)
    if len(copy) < MIN_CHARS:
        return "short"
    if not any(copy in normalise(a) for a in answers):
        return "not_found"
    sentences = [s for a in answers for s in split_sentences(a)]
    containing = [s for s in sentences if copy in s]
    if not containing:
        return "several"
    core = len(_core(copy)) or len(copy)
    if any(core >= MIN_SHARE * max(1, len(_core(s))) for s in containing):
        return None
    return "fragment"
