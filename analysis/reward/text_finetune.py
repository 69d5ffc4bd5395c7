"""Fine-tune a local transformer checkpoint (e.g. ModernBERT) as a pairwise text reward model.

The paper's text baselines (Table 2, "mBERT + Text" and "+ Text + IF") read the query and both
answers and predict which answer the worker preferred.  This module is the training/evaluation
code behind them, with the same estimator API and the same fold protocols as the forests, so the
numbers are comparable.  Pure: no Django.  The checkpoint is always a local path (no hub access);
tests use a tiny randomly initialised BERT with a file-less tokenizer.

Label direction: ``y = 1`` means response 1 (left) was preferred; ``predict_proba[:, 1]`` is
P(response 1 preferred).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .evaluate import classification_scores, make_splits
from .labels import winner_from_prob


def pair_text(query: str, response_1: str, response_2: str, features: Mapping[str, float] | None = None) -> str:
    """The model's input: query and both answers; "Text + IF" appends ``name: value`` pairs
    (what the paper did: "we simply append every feature name and its value to the text")."""
    text = f"Question: {query}\n[Answer 1]\n{response_1}\n[Answer 2]\n{response_2}"
    if features:
        text += "\n[Behaviour]\n" + "; ".join(
            f"{name}: {value:.3g}" for name, value in features.items() if value == value  # skip NaN
        )
    return text


@dataclass
class TextPairClassifier:
    """Sequence classification head fine-tuned on (pair text, preferred side).

    Parameters mirror appendix B.4 (batch size 1, lr 1e-5) as defaults.
    """

    model_path: str
    epochs: int = 2
    lr: float = 1e-5
    batch_size: int = 1
    max_length: int = 512
    seed: int = 0
    device: str | None = None

    def fit(self, texts: Sequence[str], y: Sequence[int], *, on_step: Callable[[int, int], None] | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        torch.manual_seed(self.seed)
        self.device_ = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer_ = AutoTokenizer.from_pretrained(self.model_path)
        self.model_ = AutoModelForSequenceClassification.from_pretrained(self.model_path, num_labels=2)
        if self.model_.config.pad_token_id is None:
            self.model_.config.pad_token_id = self.tokenizer_.pad_token_id
        self.model_.to(self.device_).train()
        optimizer = torch.optim.AdamW(self.model_.parameters(), lr=self.lr)
        y = np.asarray(y, dtype=int)
        rng = np.random.default_rng(self.seed)
        total = self.epochs * int(np.ceil(len(texts) / self.batch_size))
        step = 0
        for _ in range(self.epochs):
            order = rng.permutation(len(texts))
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self._encode([texts[i] for i in idx])
                out = self.model_(**batch, labels=torch.as_tensor(y[idx], device=self.device_))
                out.loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                step += 1
                if on_step:
                    on_step(step, total)
        self.classes_ = np.array([0, 1])
        return self

    def _encode(self, texts: Sequence[str]) -> dict[str, Any]:
        enc = self.tokenizer_(
            list(texts), truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )
        return {k: v.to(self.device_) for k, v in enc.items()}

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self.model_.eval()
        probs = []
        with torch.no_grad():
            for start in range(0, len(texts), 8):
                logits = self.model_(**self._encode(texts[start : start + 8])).logits
                probs.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        return np.concatenate(probs) if probs else np.zeros((0, 2))


def cross_validate_text(
    pairs: pd.DataFrame,
    y: Sequence[int],
    groups: Sequence[Any],
    query_ids: Sequence[int],
    *,
    make_model: Callable[[int], TextPairClassifier],
    model_name: str,
    protocols: Sequence[str] = ("grouped", "ungrouped"),
    seeds: Sequence[int] = (0,),
    n_splits: int = 5,
    features: pd.DataFrame | None = None,
    k: int = 50,
    on_fold: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-fold evaluation under the forests' protocols.  Returns ``(scores, oof)`` in
    :func:`~analysis.reward.evaluate_table`'s format.

    ``pairs`` has ``query``, ``response_1``, ``response_2`` (row order = ``y``).  With
    ``features`` (same rows) this is "Text + IF": the top-``k`` features are ranked on each
    training fold only (nested, no leak) and appended to the text of train and test rows.
    """
    from .selection import TopKImportance

    y, groups, qids = np.asarray(y, dtype=int), np.asarray(groups), np.asarray(query_ids)
    base = list(zip(pairs["query"], pairs["response_1"], pairs["response_2"], strict=True))

    def texts_for(rows: np.ndarray, columns: list[str] | None) -> list[str]:
        if columns is None:
            return [pair_text(*base[i]) for i in rows]
        values = features.iloc[rows][columns].to_dict("records")
        return [pair_text(*base[i], v) for i, v in zip(rows, values, strict=True)]

    scores, oof = [], []
    total = len(protocols) * len(seeds) * n_splits
    done = 0
    for protocol in protocols:
        for seed in seeds:
            prob = np.full(len(y), np.nan)
            fold_of = np.full(len(y), -1)
            for fold, (train, test) in enumerate(make_splits(protocol, y, groups, n_splits, seed)):
                columns = None
                if features is not None:
                    selector = TopKImportance(k, random_state=seed).fit(features.iloc[train].fillna(-1.0), y[train])
                    columns = list(selector.selected_columns_)
                model = make_model(seed).fit(texts_for(train, columns), y[train])
                prob[test] = model.predict_proba(texts_for(test, columns))[:, 1]
                fold_of[test] = fold
                done += 1
                if on_fold:
                    on_fold(done, total)
            scores.append({"protocol": protocol, "model": model_name, "seed": seed, "n": len(y),
                           **classification_scores(y, prob)})
            winner, p_winner = winner_from_prob(prob)
            oof.append(pd.DataFrame({"query_id": qids, "y": y, "prob_1": prob, "winner": winner,
                                     "p_winner": p_winner, "fold": fold_of, "protocol": protocol,
                                     "model": model_name, "seed": seed}))
    return pd.DataFrame(scores), pd.concat(oof, ignore_index=True)
