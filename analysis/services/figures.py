"""The behaviour figures of paper section 4 / appendix A.3, rendered from the database and stored."""

from __future__ import annotations

from analysis.reward.models import HEADLINE_MODEL, LENGTH_BASELINE

from ..models import AnalysisFigure, RewardModelRun
from .base import Progress, no_progress
from .features import feature_table
from .selectors import database_inputs, grouped_predictions_frame, reward_run_latest_grouped, samples_iter


def figures_render(*, job=None, progress: Progress = no_progress) -> list[AnalysisFigure]:
    """Render every behaviour figure of paper section 4 / appendix A.3 from the database.

    The computation is ``analysis.figures`` (pure); this feeds it the database's turns and samples
    and stores one ``AnalysisFigure`` per figure.
    """
    from analysis import figures as pure_figures
    from analysis import pipeline

    turns, keys = database_inputs()
    matches, _ = pipeline.match_all(turns, samples_iter(keys, progress, 5, 40))
    figures = pure_figures.behaviour_figures(matches, turns)
    progress(60, "feature importances")
    _, table = feature_table(params={"worker_normalise": False}, progress=lambda *_: None)
    figures += pure_figures.importance_figures(table.features, turns)
    reliability = reliability_figure()
    if reliability is not None:
        figures.append(("reliability", "Reliability of reward-model confidences (latest run, grouped)", reliability))
    from ..plan_services import learning_curve_figure

    curve = learning_curve_figure()
    if curve is not None:
        figures.append(curve)
    out = []
    for i, (name, title, fig) in enumerate(figures):
        progress(70 + 25 * i / max(len(figures), 1), f"rendering {name}")
        png, svg = pure_figures.png_svg(fig)
        out.append(AnalysisFigure.objects.create(name=name, title=title, job=job, png=png, svg=svg))
    return out


def reliability_figure(run: RewardModelRun | None = None, models: tuple[str, ...] = (LENGTH_BASELINE, HEADLINE_MODEL)):
    """Reliability diagram of a run's worker-grouped out-of-fold predictions (latest run by
    default): raw and, where stored, calibrated confidence of each of ``models``; None when the
    run has no grouped predictions."""
    from analysis.plots.calibration import reliability_diagram

    if run is None:
        run = reward_run_latest_grouped()
    if run is None:
        return None
    rows = grouped_predictions_frame(run=run, models=models)
    if rows.empty:
        return None
    curves = {}
    for model, part in rows.groupby("model_name", sort=False):
        y = (part["label"] == 1).astype(int).to_numpy()
        curves[f"{model}, raw"] = (y, part["prob_1"].to_numpy(dtype=float))
        if part["prob_1_cal"].notna().all():
            curves[f"{model}, calibrated"] = (y, part["prob_1_cal"].to_numpy(dtype=float))
    return reliability_diagram(curves, title=f"Reliability, run {run.pk} (worker-grouped out-of-fold)")
