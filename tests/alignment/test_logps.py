import torch

from alignment.training.logps import batch_logps, concatenated_forward


def test_batch_logps_shift_and_mask():
    vocab = 5
    logits = torch.randn(2, 4, vocab)
    labels = torch.tensor([[-100, 3, 1, -100], [-100, -100, 2, 4]])
    logps, n = batch_logps(logits, labels)
    lsm = logits.log_softmax(-1)
    # position t predicts token t+1
    expected0 = lsm[0, 0, 3] + lsm[0, 1, 1]
    expected1 = lsm[1, 1, 2] + lsm[1, 2, 4]
    assert torch.allclose(logps, torch.stack([expected0, expected1]))
    assert n.tolist() == [2, 2]
    avg, _ = batch_logps(logits, labels, average=True)
    assert torch.allclose(avg, logps / 2)


def test_concatenated_forward_matches_separate(tiny_model):
    tiny_model.eval()
    ids_c = torch.tensor([[5, 6, 7, 8, 1], [9, 10, 11, 1, 0]])
    ids_r = torch.tensor([[5, 6, 12, 1, 0], [9, 13, 14, 15, 1]])
    mask_c = (torch.arange(5) < torch.tensor([[5], [4]])).long()
    mask_r = (torch.arange(5) < torch.tensor([[4], [5]])).long()
    lab_c = torch.where(mask_c.bool(), ids_c, torch.tensor(-100))
    lab_c[:, :2] = -100
    lab_r = torch.where(mask_r.bool(), ids_r, torch.tensor(-100))
    lab_r[:, :2] = -100
    batch = {
        "chosen_input_ids": ids_c, "chosen_attention_mask": mask_c, "chosen_labels": lab_c,
        "rejected_input_ids": ids_r, "rejected_attention_mask": mask_r, "rejected_labels": lab_r,
    }
    with torch.no_grad():
        out = concatenated_forward(tiny_model, batch)
        sep_c, _ = batch_logps(tiny_model(input_ids=ids_c, attention_mask=mask_c).logits, lab_c)
        sep_r, _ = batch_logps(tiny_model(input_ids=ids_r, attention_mask=mask_r).logits, lab_r)
    assert torch.allclose(out["chosen_logps"], sep_c, atol=1e-5)
    assert torch.allclose(out["rejected_logps"], sep_r, atol=1e-5)
    assert out["chosen_n_tokens"].tolist() == [3, 2]


def _batch():
    ids = torch.tensor([[5, 6, 7, 8, 1, 0], [9, 10, 11, 12, 13, 1]])
    mask = (ids != 0).long()
    mask[1] = 1
    labels = torch.where(mask.bool(), ids, torch.tensor(-100))
    labels[:, :2] = -100  # prompt
    return ids, mask, labels


def test_fused_lm_head_gives_the_same_logps_and_gradients(tiny_model):
    """TRL's tiled LM head must be a drop-in for full logits: values and gradients."""
    import copy

    from alignment.training.logps import fused_lm_head, sequence_logps

    tiny_model.eval()
    twin = copy.deepcopy(tiny_model)
    ids, mask, labels = _batch()
    plain, n_plain = sequence_logps(tiny_model, ids, mask, labels)
    with fused_lm_head(twin):
        fused, n_fused = sequence_logps(twin, ids, mask, labels)
        with torch.no_grad():  # the plain path (generation) is untouched inside the block
            assert torch.allclose(twin(input_ids=ids).logits, tiny_model(input_ids=ids).logits)
    assert n_plain.tolist() == n_fused.tolist() == [3, 4]
    assert torch.allclose(plain, fused, atol=1e-4)
    plain.sum().backward()
    fused.sum().backward()
    for (name, a), b in zip(tiny_model.named_parameters(), twin.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-4, rtol=1e-3), name


def test_fused_lm_head_is_undone_after_the_block(tiny_model):
    """The patch must not outlive training: a deep copy made later must run its own weights."""
    import copy

    from alignment.training.logps import fused_lm_head

    ids, mask, _ = _batch()
    with fused_lm_head(tiny_model):
        assert "forward" in tiny_model.__dict__
    assert "forward" not in tiny_model.__dict__
    twin = copy.deepcopy(tiny_model)
    with torch.no_grad():
        twin.lm_head.weight.add_(1.0)
        a = tiny_model(input_ids=ids, attention_mask=mask).logits
        b = twin(input_ids=ids, attention_mask=mask).logits
    assert not torch.allclose(a, b)


def test_fused_lm_head_can_be_switched_off(tiny_model):
    from alignment.training.logps import fused_lm_head

    with fused_lm_head(tiny_model, enabled=False):
        assert "forward" not in tiny_model.__dict__
