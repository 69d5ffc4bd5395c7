"""Reward models on implicit-feedback features (scikit-learn API), pure: no Django."""

from .evaluate import EvalConfig, EvalResult, evaluate_regression, evaluate_table, format_table, summarize
from .labels import pairwise_labels, pointwise_labels, swap_sides, winner_from_prob
from .models import ForestParams, ModelSpec, default_specs, text_specs
from .new_worker import LengthResidualiser, SideSymmetricClassifier, standardise_within
from .selection import ColumnFilter, TopKImportance

__all__ = [
    "ColumnFilter",
    "EvalConfig",
    "EvalResult",
    "LengthResidualiser",
    "ForestParams",
    "ModelSpec",
    "SideSymmetricClassifier",
    "TopKImportance",
    "default_specs",
    "evaluate_regression",
    "evaluate_table",
    "format_table",
    "pairwise_labels",
    "pointwise_labels",
    "standardise_within",
    "summarize",
    "swap_sides",
    "text_specs",
    "winner_from_prob",
]
