"""Behaviour analyses (paper section 4, appendix A.3): functions returning matplotlib Figures.

No I/O: callers save or show the figures. The Agg backend is selected on import so the
functions work in workers and tests without a display.
"""

import matplotlib

matplotlib.use("Agg")

from .behaviour import (
    cluster_trajectories,
    gaze_mouse_correlation,
    length_groups,
    position_distributions,
    reading_heatmap,
    reading_position,
    trajectory_matrix,
    trajectory_points,
)
from .importance import importance_figure, partial_dependence_figure, signal_weight_figure

__all__ = [
    "cluster_trajectories",
    "gaze_mouse_correlation",
    "importance_figure",
    "length_groups",
    "partial_dependence_figure",
    "position_distributions",
    "reading_heatmap",
    "reading_position",
    "signal_weight_figure",
    "trajectory_matrix",
    "trajectory_points",
]
