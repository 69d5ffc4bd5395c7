import pytest
import torch

from alignment.training.generate import generate_answers, normalise_query, select_test_queries


def test_select_test_queries_distinct_and_seeded():
    queries = [f"Query {i}" for i in range(50)] + ["query 3", "  QUERY   4 ", "Query 5"]
    picked = select_test_queries(queries, n=50, seed=0)
    assert len({normalise_query(q) for q in picked}) == 50
    assert select_test_queries(queries, n=10, seed=1) == select_test_queries(list(reversed(queries)), n=10, seed=1)
    assert select_test_queries(queries, n=10, seed=1) != select_test_queries(queries, n=10, seed=2)
    with pytest.raises(ValueError, match="distinct"):
        select_test_queries(queries, n=51)
    kept = select_test_queries(queries, n=45, exclude=["query 0", "QUERY 1"])
    assert not {"query 0", "query 1"} & {normalise_query(q) for q in kept}


def test_generate_left_padding_matches_unbatched(tiny_model, tokenizer):
    prompts = ["short", "a considerably longer prompt here"]
    batched = generate_answers(tiny_model, tokenizer, prompts, max_new_tokens=8, batch_size=2)
    single = [generate_answers(tiny_model, tokenizer, [p], max_new_tokens=8)[0] for p in prompts]
    assert batched == single
    assert all(isinstance(a, str) for a in batched)
    assert tiny_model.training  # mode restored


def test_generate_stops_at_eos(tokenizer):
    from .conftest import make_tiny_gpt2

    model = make_tiny_gpt2(tokenizer)
    # Tied embeddings: only EOS has a non-zero embedding, and ln_f's bias makes every hidden
    # state positive, so EOS has the largest logit at every position.
    with torch.no_grad():
        model.transformer.wte.weight.zero_()
        model.transformer.wte.weight[tokenizer.eos_token_id, :] = 1.0
        model.transformer.ln_f.bias.fill_(5.0)
    assert generate_answers(model, tokenizer, ["anything"], max_new_tokens=20) == [""]
    # and with a normal model the answer is capped by max_new_tokens (bytes -> <= 5 chars)
    other = make_tiny_gpt2(tokenizer, seed=5)
    assert len(generate_answers(other, tokenizer, ["anything"], max_new_tokens=5)[0].encode()) <= 5
