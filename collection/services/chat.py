"""Answering a turn: both models at once, streamed as events, each answer stored once.

``turn_answer_events`` is an async generator of plain dicts (the view turns them into
server-sent events). For a pairwise turn the two models run as two asyncio tasks feeding one
queue, so neither waits for the other. A side that already has a stored answer is replayed from
the database (a reload, or a retry of the other side), so what the page shows at the end is
always the stored text: the ``done`` event carries it, and the page replaces the streamed
pieces with it, which keeps character indices of the gaze logs pointing into the stored text.

One paid model call per side of a turn, whatever the number of requests and processes: a
stream claims the side with a conditional UPDATE (``Turn.answering_<side>``, expiring after
the answer deadline if its process died); any other stream for that side waits for the stored
answer (or error) and replays it. A claim is given back when the answer or error is stored, or
when the claiming stream is closed before that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ..llm import ProviderError, client_for
from ..models import LLMModel, Mode, Task, Turn
from .study import turn_response_store

#: Longest time one answer may take from request to last piece.
ANSWER_DEADLINE_S = 180.0
#: How often a stream waiting for another stream's answer looks at the row.
WAIT_POLL_S = 0.2


@sync_to_async
def _claim(turn_id: int, side: int) -> bool:
    """Take the side's model call (True), unless another stream holds a live claim or an answer
    is stored (False)."""
    now = timezone.now()
    free = Q(**{f"answering_{side}__isnull": True}) | Q(
        **{f"answering_{side}__lt": now - timedelta(seconds=ANSWER_DEADLINE_S + 30)})
    return bool(Turn.objects.filter(free, pk=turn_id, **{f"response_{side}": ""})
                .update(**{f"answering_{side}": now, f"error_{side}": ""}))


@sync_to_async
def _release(turn_id: int, side: int) -> None:
    Turn.objects.filter(pk=turn_id).update(**{f"answering_{side}": None})


@sync_to_async
def _side_state(turn_id: int, side: int) -> tuple[str, str, bool]:
    row = Turn.objects.filter(pk=turn_id).values(f"response_{side}", f"error_{side}", f"answering_{side}").get()
    return row[f"response_{side}"], row[f"error_{side}"], row[f"answering_{side}"] is not None


def conversation_for_side(*, turns: list[Turn], turn: Turn, side: int) -> list[dict[str, str]]:
    """The messages model ``side`` receives: its own earlier answers only (each model sees its
    own conversation), then the new query as sent (with any bullet-point instruction)."""
    messages: list[dict[str, str]] = []
    for earlier in turns:
        if earlier.index >= turn.index:
            continue
        answer = getattr(earlier, f"response_{side}")
        if answer:
            messages.append({"role": "user", "content": earlier.query_sent or earlier.query})
            messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": turn.query_sent or turn.query})
    return messages


@sync_to_async
def _load(turn_id: int) -> tuple[Turn, list[Turn], dict[str, LLMModel]]:
    turn = Turn.objects.select_related("task").get(pk=turn_id)
    turns = list(turn.task.turns.order_by("index"))
    names = [n for n in (turn.model_1, turn.model_2) if n]
    models = {m.name: m for m in LLMModel.objects.filter(name__in=names)}
    return turn, turns, models


_store = sync_to_async(turn_response_store)


async def _answer_side(
    *, turn: Turn, side: int, messages: list[dict[str, str]], model: LLMModel | None, queue: asyncio.Queue
) -> None:
    kwargs = {"turn": turn, "side": side, "messages": messages, "model": model, "queue": queue}
    if await _claim(turn.pk, side):
        await _answer_side_claimed(**kwargs)
    else:
        await _replay_side(**kwargs)


async def _replay_side(
    *, turn: Turn, side: int, messages: list[dict[str, str]], model: LLMModel | None, queue: asyncio.Queue
) -> None:
    """Another stream is answering this side: wait for what it stores and replay it (or take the
    call over if that stream gave it back without an answer)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ANSWER_DEADLINE_S + 30
    while loop.time() < deadline:
        await asyncio.sleep(WAIT_POLL_S)
        text, error, claimed = await _side_state(turn.pk, side)
        if text:
            await queue.put({"event": "done", "side": side, "text": text})
            return
        if error and not claimed:
            break
        if not claimed and await _claim(turn.pk, side):
            await _answer_side_claimed(turn=turn, side=side, messages=messages, model=model, queue=queue)
            return
    await queue.put({"event": "error", "side": side,
                     "message": _("This answer could not be loaded. Please try again.")})


async def _answer_side_claimed(**kwargs: Any) -> None:
    try:
        await _call_side(**kwargs)
    except BaseException:  # closed (the page left) or failed before storing: the call is free again
        await asyncio.shield(_release(kwargs["turn"].pk, kwargs["side"]))
        raise


async def _call_side(
    *, turn: Turn, side: int, messages: list[dict[str, str]], model: LLMModel | None, queue: asyncio.Queue
) -> None:
    parts: list[str] = []
    try:
        if model is None:
            raise ProviderError(f"model {getattr(turn, f'model_{side}')!r} is not in the registry")
        client = client_for(model)
        async with asyncio.timeout(ANSWER_DEADLINE_S):
            async for piece in client.stream(messages):
                parts.append(piece)
                await queue.put({"event": "delta", "side": side, "text": piece})
        stored = await _store(turn=turn, side=side, text="".join(parts))
    except (ProviderError, TimeoutError) as exc:
        message = str(exc) or type(exc).__name__
        stored = await _store(turn=turn, side=side, error=message)
    text = getattr(stored, f"response_{side}")
    if text:
        await queue.put({"event": "done", "side": side, "text": text})
    else:
        await queue.put({
            "event": "error", "side": side,
            "message": _("This answer could not be loaded. Please try again."),
        })


async def turn_answer_events(*, turn_id: int) -> AsyncIterator[dict[str, Any]]:
    """Events ``delta``/``done``/``error`` per side, then ``end``; see the module docstring."""
    turn, turns, models = await _load(turn_id)
    task: Task = turn.task
    sides = (1, 2) if task.mode == Mode.PAIRWISE else (1,)
    queue: asyncio.Queue = asyncio.Queue()
    workers = []
    for side in sides:
        stored = getattr(turn, f"response_{side}")
        if stored:
            yield {"event": "done", "side": side, "text": stored}
            continue
        messages = conversation_for_side(turns=turns, turn=turn, side=side)
        model = models.get(getattr(turn, f"model_{side}"))
        workers.append(asyncio.create_task(_answer_side(turn=turn, side=side, messages=messages, model=model,
                                                        queue=queue)))
    getter: asyncio.Task | None = None
    try:
        pending = set(workers)
        while pending:
            getter = asyncio.create_task(queue.get())
            done, _pending = await asyncio.wait(pending | {getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
            else:
                getter.cancel()
            for w in done - {getter}:
                pending.discard(w)
                w.result()  # a bug in _answer_side must surface, not hang the stream
        while not queue.empty():
            yield queue.get_nowait()
    finally:
        if getter is not None:
            getter.cancel()
        for w in workers:
            w.cancel()
    yield {"event": "end"}
