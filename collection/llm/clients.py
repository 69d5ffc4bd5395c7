"""Streaming chat clients behind one small contract, one per provider kind of the registry.

Contract (:class:`LLMClient`): ``stream(messages)`` is an async iterator of text pieces whose
concatenation is the whole answer; any failure (network, timeout, HTTP error, empty answer)
raises :class:`ProviderError` with a message fit for the staff, never a partial answer passed
off as complete. Each client makes at most one retry, and only before the first piece arrived
(the SDKs' own ``max_retries=1``): retrying after text was shown would show different text.

No system prompt, as in the paper; ``max_tokens`` comes from the registry (default 500).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import httpx

if TYPE_CHECKING:
    from ..models import LLMModel

Message = dict[str, str]  # {"role": "user"|"assistant", "content": str}

#: Seconds to connect, and between two pieces of a streamed answer.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
MAX_RETRIES = 1


class ProviderError(Exception):
    """The model could not answer; ``str(exc)`` says why (stored in ``Turn.error_*``)."""


class LLMClient(Protocol):
    name: str

    def stream(self, messages: list[Message]) -> AsyncIterator[str]:
        """Yield the answer's text pieces in order; raise ProviderError on failure."""
        ...


def _timeout() -> object:
    """The installed SDKs run on ``httpx2`` and refuse ``httpx`` objects: build the Timeout they use."""
    try:
        import httpx2
    except ImportError:  # older SDKs use httpx
        return httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    return httpx2.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)


def api_key(model: LLMModel) -> str:
    """The API key of a registry entry, read from its environment variable at call time.

    The one key rule of the lab (chat clients here, the alignment judge in
    ``alignment.tasks.judge_client_fn``): a model that names a variable which is not set raises
    ProviderError instead of sending a placeholder key that the provider would refuse later.
    """
    if not model.api_key_env:
        return "not-needed"  # local servers (vLLM, Ollama) accept any key
    key = os.environ.get(model.api_key_env, "")
    if not key:
        raise ProviderError(f"environment variable {model.api_key_env} is not set")
    return key


async def _guarded(
    pieces: AsyncGenerator[str, None], sdk_error: type[Exception], close: Callable[[], Awaitable[None]]
) -> AsyncIterator[str]:
    """An SDK's stream of text pieces held to the contract of :class:`LLMClient`: SDK and transport
    errors (``OSError`` and the ``httpx`` errors the SDK did not wrap) become ProviderError, the
    client is closed however the stream ends, and an answer without text is an error."""
    got_text = False
    try:
        async for piece in pieces:
            if piece:
                got_text = True
                yield piece
    except (sdk_error, httpx.HTTPError, OSError) as exc:
        raise ProviderError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        await pieces.aclose()
        await close()
    if not got_text:
        raise ProviderError("the model returned an empty answer")


class OpenAICompatibleClient:
    """OpenAI chat completions (also DeepSeek, Together, vLLM, Ollama) through the ``openai`` SDK."""

    def __init__(self, model: LLMModel) -> None:
        import openai  # imported on use: the SDKs take seconds to import, the site starts without them

        self.name, self.model_id, self.max_tokens = model.name, model.model_id, model.max_tokens
        self._client = openai.AsyncOpenAI(
            api_key=api_key(model), base_url=model.base_url or None, timeout=_timeout(), max_retries=MAX_RETRIES
        )

    def stream(self, messages: list[Message]) -> AsyncIterator[str]:
        import openai

        return _guarded(self._pieces(messages), openai.APIError, self._client.close)

    async def _pieces(self, messages: list[Message]) -> AsyncGenerator[str, None]:
        response = await self._client.chat.completions.create(
            model=self.model_id, messages=messages, max_tokens=self.max_tokens, stream=True
        )
        async for chunk in response:
            for choice in chunk.choices:
                if choice.delta and choice.delta.content:
                    yield choice.delta.content


class AnthropicClient:
    """Anthropic Messages API through the ``anthropic`` SDK."""

    def __init__(self, model: LLMModel) -> None:
        import anthropic

        self.name, self.model_id, self.max_tokens = model.name, model.model_id, model.max_tokens
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key(model), base_url=model.base_url or None, timeout=_timeout(),
            max_retries=MAX_RETRIES,
        )

    def stream(self, messages: list[Message]) -> AsyncIterator[str]:
        import anthropic

        return _guarded(self._pieces(messages), anthropic.APIError, self._client.close)

    async def _pieces(self, messages: list[Message]) -> AsyncGenerator[str, None]:
        async with self._client.messages.stream(
            model=self.model_id, messages=messages, max_tokens=self.max_tokens
        ) as stream:
            async for text in stream.text_stream:
                yield text


_DEMO_SENTENCES = (
    "{topic} is a subject with several sides worth looking at.",
    "A useful way to start is to ask what problem it addresses and for whom.",
    "Historically, the ideas behind it developed step by step rather than all at once.",
    "People who study it often disagree about which factors matter most.",
    "One common view stresses practical consequences; another stresses underlying principles.",
    "Examples from everyday life can make the abstract points easier to follow.",
    "It also connects to neighbouring fields, which is why it keeps coming up in discussions.",
    "If you want to go deeper, compare two contrasting explanations and look for the evidence behind each.",
)


class DemoClient:
    """Offline model for development and tests: a deterministic answer, streamed word by word.

    The same conversation always gives the same text (seeded by the model id and the messages),
    different demo models give different answers, and a bullet-point request gets bullet points.
    """

    def __init__(self, model: LLMModel, *, delay_s: float = 0.02) -> None:
        self.name, self.model_id, self.delay_s = model.name, model.model_id, delay_s

    def answer(self, messages: list[Message]) -> str:
        question = messages[-1]["content"] if messages else ""
        seed = hashlib.sha256(f"{self.model_id}|{len(messages)}|{question}".encode()).digest()
        order = sorted(range(len(_DEMO_SENTENCES)), key=lambda i: seed[i])
        n = 3 + seed[8] % 4
        topic = question.split("?")[0].strip()[:60] or "This topic"
        sentences = [_DEMO_SENTENCES[i].format(topic=topic) for i in order[:n]]
        if "bullet point" in question.lower():
            return "\n".join(f"- {s}" for s in sentences)
        # No model name in the text: workers must not learn which model answered (pairwise sides
        # are randomised so that they cannot tell; a name in the answer would undo that).
        return " ".join(sentences)

    async def stream(self, messages: list[Message]) -> AsyncIterator[str]:
        text = self.answer(messages)
        words = text.split(" ")
        for i, word in enumerate(words):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield word if i == len(words) - 1 else word + " "


def client_for(model: LLMModel) -> LLMClient:
    """The client of a registry entry; raises ProviderError for a misconfigured one."""
    from ..models import LLMProvider

    if model.provider == LLMProvider.OPENAI:
        return OpenAICompatibleClient(model)
    if model.provider == LLMProvider.ANTHROPIC:
        return AnthropicClient(model)
    if model.provider == LLMProvider.DEMO:
        return DemoClient(model)
    raise ProviderError(f"unknown provider {model.provider!r}")
