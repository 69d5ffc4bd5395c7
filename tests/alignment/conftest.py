"""Shared setup for the pure alignment tests (no database, no network)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Offline: nothing in these tests may reach the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # so `alignment` and `tests.support` import without install
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.support.fake_llm_server import fake_llm_server  # noqa: E402, F401  (fixture)


def make_tokenizer():
    """Byte-level tokenizer that needs no files (pad 0, eos 1, 384 ids)."""
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()


def make_tiny_gpt2(tokenizer, *, seed: int = 0, n_positions: int = 512):
    """A randomly initialised 2-layer GPT-2 (n_embd 64) sized to the tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_layer=2, n_embd=64, n_head=2, n_positions=n_positions,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config)


@pytest.fixture(scope="session")
def tokenizer():
    return make_tokenizer()


@pytest.fixture
def tiny_model(tokenizer):
    return make_tiny_gpt2(tokenizer)
