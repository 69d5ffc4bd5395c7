"""Model leaderboards from pairwise votes (pure: no Django).

- :mod:`.votes`: votes from explicit preferences, reward-model predictions, or both; style
  covariates.
- :mod:`.bradley_terry`: Bradley–Terry fit as a logistic regression, worker-bootstrap intervals,
  Arena ranks.
- :mod:`.agreement`: Kendall's τ and swapped pairs between two leaderboards.
- :mod:`.board`: all of it per vote source, as tables, CSV and JSON.
"""

from .agreement import Agreement, agreement
from .board import SOURCES, Leaderboard, SourceBoard, build_leaderboard, vote_sources
from .bradley_terry import BradleyTerryFit, arena_ranks, bootstrap_weights, fit_bradley_terry, fit_logistic
from .votes import clean_model_name, explicit_votes, implicit_votes, mixed_votes, style_covariates

__all__ = [
    "SOURCES",
    "Agreement",
    "BradleyTerryFit",
    "Leaderboard",
    "SourceBoard",
    "agreement",
    "arena_ranks",
    "bootstrap_weights",
    "build_leaderboard",
    "clean_model_name",
    "explicit_votes",
    "fit_bradley_terry",
    "fit_logistic",
    "implicit_votes",
    "mixed_votes",
    "style_covariates",
    "vote_sources",
]
