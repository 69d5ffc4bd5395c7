"""Reward models on implicit-feedback features (scikit-learn API), pure: no Django."""

from .evaluate import EvalConfig, EvalResult, evaluate_regression, evaluate_table, format_table, summarize
from .labels import pairwise_labels, pointwise_labels, swap_sides, winner_from_prob
from .models import ForestParams, ModelSpec, default_specs, text_specs
from .selection import ColumnFilter, TopKImportance

__all__ = [
    "ColumnFilter",
    "EvalConfig",
    "EvalResult",
    "ForestParams",
    "ModelSpec",
    "TopKImportance",
    "default_specs",
    "evaluate_regression",
    "evaluate_table",
    "format_table",
    "pairwise_labels",
    "pointwise_labels",
    "summarize",
    "swap_sides",
    "text_specs",
    "winner_from_prob",
]
