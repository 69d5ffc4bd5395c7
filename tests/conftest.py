"""Suite-wide fixtures.

Tasks run eagerly (in-process) in every test, even when REDIS_URL is set for the suite, so that no
test silently leaves messages in Redis waiting for a worker that does not exist. Tests marked
``real_celery`` opt out and talk to the real broker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _celery_eager(request: pytest.FixtureRequest) -> Iterator[None]:
    from ifllm_site.celery import app

    if request.node.get_closest_marker("real_celery"):
        yield
        return
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def tiny_bert(tmp_path) -> str:
    """A 1-layer random BERT pair classifier with the offline ByT5 tokenizer, saved like a checkpoint."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, ByT5Tokenizer

    tok = ByT5Tokenizer()
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256, pad_token_id=tok.pad_token_id)
    path = tmp_path / "tiny-bert"
    BertForSequenceClassification(config).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)
