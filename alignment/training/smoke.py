"""A tiny, randomly initialised causal LM for trying the alignment loop on a fresh install.

A lab member who has no local checkpoint yet can still walk SFT -> rDPO -> evaluation on a CPU
in minutes. The model is a 2-layer GPT-2 with the byte-level ByT5 tokenizer, which needs no
files and no download (the same kind of model the tests train). Its answers are noise: it is
labelled as a smoke-test model in its folder name, its config and a README.
"""

from __future__ import annotations

from pathlib import Path

SMOKE_NAME = "smoke-test-tiny-gpt2"

README = """# SMOKE-TEST MODEL (random weights)

A 2-layer GPT-2 (n_embd {n_embd}, context {n_positions} tokens) with the byte-level ByT5
tokenizer, randomly initialised (seed {seed}) by `manage.py make_smoke_model`.
It exists to try SFT -> rDPO -> evaluation end to end on a CPU; its outputs mean nothing.
Use a real checkpoint (a local folder saved with `save_pretrained`) for results.
"""


def make_smoke_model(path: str | Path, *, seed: int = 0, n_embd: int = 64, n_positions: int = 1024) -> Path:
    """Save the smoke-test model and its tokenizer to ``path`` (created); returns the folder.

    ``n_positions`` 1024 leaves room for the evaluation's default 256 prompt + 512 new tokens.
    """
    import torch
    from transformers import ByT5Tokenizer, GPT2Config, GPT2LMHeadModel

    path = Path(path)
    tokenizer = ByT5Tokenizer()
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_layer=2, n_embd=n_embd, n_head=2, n_positions=n_positions,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config.ifllm_smoke_test = True  # stored in config.json: the model says what it is
    path.mkdir(parents=True, exist_ok=True)
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "README.md").write_text(README.format(n_embd=n_embd, n_positions=n_positions, seed=seed))
    return path


def is_smoke_model(path: str | Path) -> bool:
    import json

    config = Path(path) / "config.json"
    return config.exists() and bool(json.loads(config.read_text()).get("ifllm_smoke_test"))
