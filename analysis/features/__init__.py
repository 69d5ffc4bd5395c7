"""Implicit-feedback features (paper Table 1): pure numpy/pandas, no Django."""

from .config import FeatureConfig
from .quality import QualityThresholds, quality_filter
from .table import FeatureTable, build_feature_table, feature_columns

__all__ = [
    "FeatureConfig",
    "FeatureTable",
    "QualityThresholds",
    "build_feature_table",
    "feature_columns",
    "quality_filter",
]
