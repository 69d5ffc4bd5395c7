"""Clients of the language models that answer workers' questions (see ``clients.py``)."""

from .clients import LLMClient, ProviderError, client_for

__all__ = ["LLMClient", "ProviderError", "client_for"]
