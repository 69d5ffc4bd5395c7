"""The models aimed at new workers as :class:`~analysis.reward.models.ModelSpec` rows (pure).

Each spec runs through :func:`~analysis.reward.evaluate.evaluate_table` like the paper's models,
so IF is ranked inside every training fold and the folds are the same as the baseline's (paired
comparison). Feature-table transforms (within-worker / within-task z-scores) are not specs: they
change the input table, see :func:`relative_features`. Results and the command that measures
them: README, analysis section (``benchmarks/reward_new_workers.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from sklearn.pipeline import Pipeline

from .blend import GroupBlend
from .models import ForestParams, ModelSpec, logistic_regression
from .new_worker import LengthResidualiser, SideSymmetricClassifier, standardise_within
from .sequence import DwellSequenceClassifier

#: Exploration forests: 100 trees (within the seed spread of 500 on dev, ``benchmarks/reward_trees.py``).
FOREST_100 = ForestParams(n_estimators=100)


def _symmetric(make: Callable[[int], object]) -> Callable[[int], object]:
    def build(random_state: int) -> SideSymmetricClassifier:
        return SideSymmetricClassifier(make(random_state))

    return build


def _residualised(make: Callable[[int], object]) -> Callable[[int], object]:
    def build(random_state: int) -> Pipeline:
        return Pipeline([("residualise", LengthResidualiser()), ("model", make(random_state))])

    return build


def _sequence(use_length: bool = True) -> Callable[[int], object]:
    def build(random_state: int) -> DwellSequenceClassifier:
        return DwellSequenceClassifier(use_length=use_length, random_state=random_state)

    return build


def _blend(make_forest: Callable[[int], object], other: Callable[[int], object], other_groups: tuple[str, ...]):
    def build(random_state: int) -> GroupBlend:
        return GroupBlend([(make_forest(random_state), None, other_groups),
                           (other(random_state), (*other_groups, "text"), ())])

    return build


def new_worker_specs(forest: ForestParams = FOREST_100) -> list[ModelSpec]:
    """Variants on the paper's feature table (plus ``cascade``/``seq`` columns where present)."""
    rf = forest.classifier
    return [
        ModelSpec("Sym RF + Text lengths", keep_groups=("text",), make_classifier=_symmetric(rf)),
        ModelSpec("Sym RF + IF", use_if=True, make_classifier=_symmetric(rf)),
        ModelSpec("RF + IF + lengths", use_if=True, extra_groups=("text",), make_classifier=rf),
        ModelSpec("RF + IF + lengths, residualised", use_if=True, extra_groups=("text",),
                  make_classifier=_residualised(rf)),
        ModelSpec("Sym RF + IF + lengths, residualised", use_if=True, extra_groups=("text",),
                  make_classifier=_symmetric(_residualised(rf))),
    ]


def cascade_specs(forest: ForestParams = FOREST_100) -> list[ModelSpec]:
    """Lengths plus the gaze cascade, and IF with the cascade always kept (needs ``cascade`` columns)."""
    rf = forest.classifier
    return [
        ModelSpec("RF + lengths + cascade", keep_groups=("text", "cascade"), make_classifier=rf),
        ModelSpec("Sym RF + lengths + cascade", keep_groups=("text", "cascade"), make_classifier=_symmetric(rf)),
        ModelSpec("RF + IF + cascade", use_if=True, extra_groups=("cascade",), make_classifier=rf),
    ]


def sequence_specs(forest: ForestParams = FOREST_100) -> list[ModelSpec]:
    """The torch time-course model alone (with and without length) and blended with RF + IF."""
    rf = forest.classifier
    return [
        ModelSpec("Seq (torch) + lengths", keep_groups=("seq", "text"), make_classifier=_sequence(True)),
        ModelSpec("Seq (torch), behaviour only", keep_groups=("seq",), make_classifier=_sequence(False)),
        ModelSpec("RF + IF ⊕ Seq", use_if=True, extra_groups=("seq", "text"),
                  make_classifier=_blend(rf, _sequence(True), ("seq",))),
    ]


def text_blend_specs(forest: ForestParams = FOREST_100) -> list[ModelSpec]:
    """A text reward signal (LogReg on MiniLM embeddings, group ``emb``) blended with behaviour."""
    rf = forest.classifier
    return [
        ModelSpec("LogReg + Text (MiniLM)", keep_groups=("emb",), make_classifier=logistic_regression),
        ModelSpec("RF + IF ⊕ Text (MiniLM)", use_if=True, extra_groups=("emb", "text"),
                  make_classifier=_blend(rf, logistic_regression, ("emb",))),
        ModelSpec("RF + lengths ⊕ Text (MiniLM)", keep_groups=("text", "emb"),
                  make_classifier=_blend(rf, logistic_regression, ("emb",))),
    ]


def relative_features(features: pd.DataFrame, within: str) -> pd.DataFrame:
    """The feature table with behaviour standardised ``within`` ``"worker"`` or ``"task"``
    (per mode, label-free; see :func:`~analysis.reward.new_worker.standardise_within`)."""
    by = {"worker": ("worker", "mode"), "task": ("worker", "task_id", "mode")}[within]
    return standardise_within(features, by)
