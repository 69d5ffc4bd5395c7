"""Parameters of feature extraction, in one place so the cache key can include them."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FeatureConfig:
    """Feature-extraction settings (paper section 5.1 and appendix B.1).

    Parameters
    ----------
    n_windows : int
        Equal time windows for "mean character in a window" (paper: 20).
    smoothing_s : float
        One-second smoothing: a sample inside a box counts the user as looking at that box for
        the next ``smoothing_s`` seconds (paper: 1 s).
    eps_time : float
        The epsilon of ratios of times in seconds, ``(a + eps) / (b + eps)``; it keeps the ratio
        finite and small when both sides were barely looked at (the paper's number is missing;
        one smoothing window is the natural scale).
    eps_norm : float
        The epsilon of ratios of normalised (0..1) quantities.
    window_span : {"reviewing", "turn"}
        Time span cut into the windows: the turn's reviewing phase (default; the reading period)
        or the whole time the turn was on screen.
    late_fraction : float
        Final share of the reviewing phase used by the "late time" features (the gaze-cascade
        effect: people look longer at the option they are about to choose).
    """

    n_windows: int = 20
    smoothing_s: float = 1.0
    eps_time: float = 1.0
    eps_norm: float = 0.05
    window_span: str = "reviewing"
    late_fraction: float = 0.25

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_FEATURE_CONFIG = FeatureConfig()
