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
