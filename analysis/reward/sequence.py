"""A small torch model over each answer's reading time course (pure, CPU, seconds to fit).

Input: the ``seq`` feature group of :mod:`analysis.features.time_course` (per side: gaze share,
normalised character and mouse share in ``n_bins`` time bins of the reviewing phase, and the
per-character dwell profile) and, when present, the answers' lengths. One encoder scores each
answer; P(left wins) = sigmoid(score(left) - score(right) + b). Sharing the encoder between
sides makes the model antisymmetric by construction, and ``b`` is the explicit position prior,
the only place where "left" differs from "right".

Encoder: two 1-D convolutions over time (3 channels -> ``hidden``), mean and max pooling, then
a linear layer on [pooled, dwell profile, log length]. About 500 parameters for ~600 pairs;
weight decay and few epochs keep it from memorising the training workers.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from analysis.features.time_course import SEQ_CHANNELS

_TIME = re.compile(r"^seq\.(\w+)_t(\d+)\.([12])$")
_DWELL = re.compile(r"^seq\.dwell_c(\d+)\.([12])$")


def seq_arrays(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(course, dwell, log_length)`` of shapes (n, 2, C, T), (n, 2, D), (n, 2) from the columns.

    Missing values (turns without a reviewing phase) become 0; missing lengths 0.
    """
    n_bins = 1 + max((int(m.group(2)) for c in X.columns if (m := _TIME.match(c))), default=-1)
    n_char = 1 + max((int(m.group(1)) for c in X.columns if (m := _DWELL.match(c))), default=-1)
    if n_bins == 0:
        raise ValueError("no seq.* time-course columns (see analysis.features.time_course)")
    course = np.zeros((len(X), 2, len(SEQ_CHANNELS), n_bins), dtype=np.float32)
    dwell = np.zeros((len(X), 2, n_char), dtype=np.float32)
    for s in (0, 1):
        for ci, ch in enumerate(SEQ_CHANNELS):
            cols = [f"seq.{ch}_t{i:02d}.{s + 1}" for i in range(n_bins)]
            course[:, s, ci] = X.reindex(columns=cols).fillna(0.0).to_numpy(dtype=np.float32)
        cols = [f"seq.dwell_c{i:02d}.{s + 1}" for i in range(n_char)]
        dwell[:, s] = X.reindex(columns=cols).fillna(0.0).to_numpy(dtype=np.float32)
    lengths = X.reindex(columns=["text.response_length.1", "text.response_length.2"]).fillna(0.0)
    return course, dwell, np.log1p(lengths.to_numpy(dtype=np.float32))


class DwellSequenceClassifier(ClassifierMixin, BaseEstimator):
    """Side-antisymmetric convolutional scorer of the reading time course (see module docstring).

    Parameters
    ----------
    hidden : int
        Channels of the convolutions.
    epochs : int
        Full-batch Adam steps.
    lr, weight_decay : float
        Adam settings (weight decay is the main regulariser).
    use_length : bool
        Give the encoder the answer's log length (False: behaviour only).
    random_state : int
        Seeds torch's initialisation.
    """

    def __init__(self, hidden: int = 8, epochs: int = 150, lr: float = 0.01, weight_decay: float = 0.01,
                 use_length: bool = True, random_state: int = 0):
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.use_length = use_length
        self.random_state = random_state

    def _net(self, n_channels: int, n_dwell: int):
        import torch
        from torch import nn

        hidden, use_length = self.hidden, self.use_length

        class Scorer(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Sequential(
                    nn.Conv1d(n_channels, hidden, 3, padding=1), nn.ReLU(),
                    nn.Conv1d(hidden, hidden, 3, padding=1), nn.ReLU(),
                )
                self.head = nn.Linear(2 * hidden + n_dwell + int(use_length), 1)
                self.bias = nn.Parameter(torch.zeros(1))

            def score(self, course, dwell, length):
                h = self.conv(course)
                parts = [h.mean(-1), h.amax(-1), dwell] + ([length[:, None]] if use_length else [])
                return self.head(torch.cat(parts, dim=1)).squeeze(1)

            def forward(self, course, dwell, length):
                s1 = self.score(course[:, 0], dwell[:, 0], length[:, 0])
                s2 = self.score(course[:, 1], dwell[:, 1], length[:, 1])
                return s1 - s2 + self.bias

        return Scorer()

    def _tensors(self, X: pd.DataFrame):
        import torch

        course, dwell, length = seq_arrays(X)
        length = (length - self.length_mean_) / self.length_std_
        return torch.from_numpy(course), torch.from_numpy(dwell), torch.from_numpy(length.astype(np.float32))

    def fit(self, X: pd.DataFrame, y) -> DwellSequenceClassifier:
        import torch

        y = np.asarray(y, dtype=np.float32)
        _, _, length = seq_arrays(X)
        self.length_mean_ = float(length.mean()) if length.size else 0.0
        self.length_std_ = float(length.std()) + 1e-6 if length.size else 1.0
        course, dwell, length = self._tensors(X)
        torch.manual_seed(self.random_state)
        with _one_thread():
            self.net_ = self._net(course.shape[2], dwell.shape[2])
            opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            target = torch.from_numpy(y)
            loss_fn = torch.nn.BCEWithLogitsLoss()
            self.net_.train()
            for _ in range(self.epochs):
                opt.zero_grad()
                loss = loss_fn(self.net_(course, dwell, length), target)
                loss.backward()
                opt.step()
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        import torch

        check_is_fitted(self, "net_")
        self.net_.eval()
        with torch.no_grad(), _one_thread():
            return self.net_(*self._tensors(X)).numpy().astype(float)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p1 = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p1, p1])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.decision_function(X) >= 0).astype(int)


class _one_thread:
    """Torch on one intra-op thread while fitting: folds already run in parallel (joblib), and
    tiny tensors gain nothing from more threads on a shared 2-core machine."""

    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc) -> None:
        import torch

        torch.set_num_threads(self.before)
