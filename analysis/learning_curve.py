"""Plan the next study: learning curves over workers, and how many workers (or votes) it takes.

On 40-60 workers no interval settles whether implicit feedback beats answer length. A lab that
considers a larger study needs the size at which it would. This module answers from the data the
lab already has:

* :func:`worker_curve` fits every model of Table 2 and the length-only model on training sets of
  ``n`` workers (drawn repeatedly at random, nested within a draw) and scores them on a held-out
  group of workers the models never saw. Each point has the accuracy and the paired difference to
  length-only, both with worker-bootstrap intervals (:mod:`analysis.reward.intervals`).
* :func:`fit_power_law` fits ``f(n) = a - b * n ** -c`` to the difference (and to accuracies) and
  gives a band from refits on bootstrap draws of the repeats.
* :func:`workers_needed` turns the curve into a study size: a study of ``N`` workers analysed by
  worker-grouped ``K``-fold CV trains on ``N (K - 1) / K`` workers and scores all ``N``; its
  difference interval has half-width ``z * s / sqrt(N)``, with ``s`` the per-worker spread of the
  difference measured here. The answer is the smallest ``N`` whose expected lower bound
  ``f(N (K - 1) / K) - z s / sqrt(N)`` is above 0, or ``None`` when the curve never gets there.
* :func:`votes_needed` answers the same question for a leaderboard: how many votes between two
  models (and how many workers) separate a true gap of 10, 25 or 50 Elo points, with the
  clustering of votes within workers measured by resampling workers against resampling votes.

Pure (no Django); the job ``analysis.learning_curve`` and ``manage.py analysis_figures`` wrap it.

Usage::

    python -m analysis.learning_curve RELEASE_DIR [--json OUT] [--repeats 5] [--sizes 8,16,24]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analysis.reward.evaluate import EvalConfig
from analysis.reward.intervals import worker_bootstrap
from analysis.reward.models import ModelSpec, default_specs
from analysis.reward.summary import LENGTH_BASELINE

#: The model whose increment over length-only answers the study's question.
TARGET_MODEL = "RF + IF"


@dataclass(frozen=True)
class CurveConfig:
    """How the curve is drawn and how a study is planned from it.

    ``sizes`` empty means 8, 16, 24, ... up to every worker outside the held-out group.
    ``planned_folds`` is the worker-grouped CV the future study's analysis will use (the run
    pages use 5 folds); ``power`` is the chance that the interval excludes 0, used for the
    leaderboard (for workers the answer is the size at which the *expected* lower bound clears 0,
    i.e. about even odds, stated as such).
    """

    sizes: tuple[int, ...] = ()
    repeats: int = 5
    test_share: float = 0.3
    min_test_workers: int = 8
    step: int = 8
    n_boot: int = 1000
    level: float = 0.95
    planned_folds: int = 5
    max_workers: int = 5000
    band_draws: int = 200
    seed: int = 0


DEFAULT_CURVE_CONFIG = CurveConfig()


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def curve_sizes(pool: int, config: CurveConfig = DEFAULT_CURVE_CONFIG) -> list[int]:
    """Training-set sizes for a pool of ``pool`` workers: ``config.sizes`` or multiples of ``step``
    plus the whole pool (sizes above the pool are dropped)."""
    if config.sizes:
        return sorted({int(n) for n in config.sizes if 2 <= n <= pool})
    # multiples of ``step`` and the whole pool, without a multiple just below the pool (a second
    # point at nearly the same size costs a fit and adds nothing to the curve)
    steps = [n for n in range(config.step, pool, config.step) if pool - n >= config.step / 2]
    return [*steps, pool] if pool >= 2 else []


def worker_curve(
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    specs: Sequence[ModelSpec] | None = None,
    eval_config: EvalConfig | None = None,
    config: CurveConfig = DEFAULT_CURVE_CONFIG,
    baseline: str = LENGTH_BASELINE,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy and difference to ``baseline`` of every model, per training-set size.

    Each repeat holds out ``max(min_test_workers, test_share * workers)`` workers, shuffles the
    others and trains on the first ``n`` of them for each size (so one repeat's curve is nested).
    Returns ``(points, draws)``: ``points`` has one row per ``(n, model)`` pooled over repeats
    (``accuracy, acc_lo, acc_hi, diff, diff_lo, diff_hi, repeats, rows, workers_test``);
    ``draws`` one row per ``(n, repeat, model)`` with that repeat's ``accuracy``, ``diff`` and
    the standard error of its difference (``diff_se``, from the worker bootstrap).
    """
    from analysis.transfer import transfer_predictions

    specs = list(default_specs() if specs is None else specs)
    if baseline not in {s.name for s in specs}:
        raise ValueError(f"specs: the baseline {baseline!r} must be one of the models")
    y, groups = np.asarray(y, dtype=np.int64), np.asarray(groups)
    workers = np.array(sorted(set(groups)))
    n_test = max(config.min_test_workers, int(round(config.test_share * len(workers))))
    if len(workers) - n_test < 2:
        raise ValueError(f"{len(workers)} workers: too few to hold out {n_test} and still train")
    sizes = curve_sizes(len(workers) - n_test, config)
    base_cfg = eval_config or EvalConfig(seeds=(0,))
    z = _z(config.level)
    draw_rows, preds = [], []
    total = config.repeats * len(sizes)
    done = 0
    for rep in range(config.repeats):
        rng = np.random.default_rng(config.seed + rep)
        order = rng.permutation(workers)
        test_w, pool = set(order[:n_test]), order[n_test:]
        test = np.isin(groups, list(test_w))
        for n in sizes:
            train = np.isin(groups, pool[:n])
            if len(np.unique(y[train])) < 2:
                done += 1
                continue
            cfg = EvalConfig(**{**base_cfg.__dict__, "seeds": (config.seed + rep,)})
            p = transfer_predictions(
                X.iloc[np.flatnonzero(train)], y[train], groups[train],
                X.iloc[np.flatnonzero(test)], y[test], groups[test], specs=specs, config=cfg,
                query_ids=np.asarray(X.index)[test],
            ).assign(n=n, repeat=rep)
            preds.append(p)
            draw_rows.extend(_draw_summary(p, baseline, config, z))
            done += 1
            if progress:
                progress(100.0 * done / total, f"repeat {rep + 1}/{config.repeats}, {n} training workers")
    if not preds:
        raise ValueError("no training set had both labels")
    allp = pd.concat(preds, ignore_index=True)
    points = []
    for (n, model), part in allp.groupby(["n", "model"], sort=True):
        base = allp[(allp["n"] == n) & (allp["model"] == baseline)].set_index(["repeat", "query_id"])
        rows = part.set_index(["repeat", "query_id"])
        correct = _correct(rows)
        base_correct = None if model == baseline else _correct(base.reindex(rows.index))
        # a worker held out in two repeats is one worker of the bootstrap, as it should be
        ci = worker_bootstrap(correct, rows["worker"].to_numpy(), baseline_correct=base_correct,
                              n_boot=config.n_boot, seed=config.seed, level=config.level)
        if model == baseline:
            ci.update({"diff": 0.0, "diff_lo": 0.0, "diff_hi": 0.0})
        points.append({"n": int(n), "model": model, **ci, "repeats": int(rows.index.get_level_values(0).nunique()),
                       "rows": int(len(rows)), "workers_test": int(rows["worker"].nunique())})
    return pd.DataFrame(points), pd.DataFrame(draw_rows)


def _correct(rows: pd.DataFrame) -> np.ndarray:
    return ((rows["prob_1"] >= 0.5).astype(int) == rows["y"]).to_numpy(float)


def _draw_summary(p: pd.DataFrame, baseline: str, config: CurveConfig, z: float) -> list[dict]:
    out = []
    base = p[p["model"] == baseline].set_index("query_id")
    for model, rows in p.groupby("model", sort=False):
        rows = rows.set_index("query_id")
        correct = _correct(rows)
        bc = None if model == baseline else _correct(base.reindex(rows.index))
        ci = worker_bootstrap(correct, rows["worker"].to_numpy(), baseline_correct=bc,
                              n_boot=config.n_boot, seed=config.seed, level=config.level)
        diff, se = (0.0, 0.0) if bc is None else (ci["diff"], (ci["diff_hi"] - ci["diff_lo"]) / (2 * z))
        out.append({"n": int(p["n"].iat[0]), "repeat": int(p["repeat"].iat[0]), "model": model,
                    "accuracy": ci["accuracy"], "diff": diff, "diff_se": se,
                    "workers_test": int(rows["worker"].nunique())})
    return out


# --- the curve ---------------------------------------------------------------------------------


def power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """``a - b * n ** -c``: rises towards ``a`` when ``b > 0`` (the usual learning curve)."""
    return a - b * np.power(np.asarray(n, dtype=float), -c)


@dataclass
class CurveFit:
    """Parameters of :func:`power_law` and their bootstrap draws (for the band)."""

    params: tuple[float, float, float]
    draws: np.ndarray  # (B, 3)

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        return power_law(np.asarray(n, dtype=float), *self.params)

    def band(self, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise ``level`` band of the curve from the refits."""
        n = np.asarray(n, dtype=float)
        if not len(self.draws):
            f = self.predict(n)
            return f, f
        curves = np.stack([power_law(n, *d) for d in self.draws])
        lo, hi = np.nanquantile(curves, [(1 - level) / 2, (1 + level) / 2], axis=0)
        return lo, hi


def _fit_once(n: np.ndarray, v: np.ndarray) -> tuple[float, float, float]:
    """Least squares of :func:`power_law`; a flat line when there are too few sizes to bend."""
    if len(np.unique(n)) < 3:
        return float(np.mean(v)), 0.0, 0.5
    guess = (float(v[n == n.max()].mean()), float(v[n == n.max()].mean() - v[n == n.min()].mean()), 0.5)
    try:
        params, _ = optimize.curve_fit(power_law, n, v, p0=guess, bounds=([-1.0, -10.0, 0.05], [1.0, 10.0, 2.0]),
                                       maxfev=5000)
        return tuple(float(x) for x in params)
    except (RuntimeError, ValueError):
        return float(np.mean(v)), 0.0, 0.5


def fit_power_law(draws: pd.DataFrame, value: str = "diff", *, n_draws: int = 200, seed: int = 0) -> CurveFit:
    """Fit :func:`power_law` to ``draws[value]`` against ``draws["n"]`` (one model's rows).

    The band comes from refits on bootstrap draws of the repeats (a repeat's curve is drawn whole,
    since its sizes share workers), so it shows how much the curve depends on which workers came.
    """
    n = draws["n"].to_numpy(float)
    v = draws[value].to_numpy(float)
    params = _fit_once(n, v)
    reps = draws["repeat"].unique()
    rng = np.random.default_rng(seed)
    out = []
    if len(reps) > 1:
        for _ in range(n_draws):
            pick = rng.choice(reps, size=len(reps), replace=True)
            sub = pd.concat([draws[draws["repeat"] == r] for r in pick])
            out.append(_fit_once(sub["n"].to_numpy(float), sub[value].to_numpy(float)))
    return CurveFit(params, np.array(out).reshape(-1, 3))


# --- workers needed ----------------------------------------------------------------------------


@dataclass
class WorkersNeeded:
    """The study size at which the difference's interval is expected to exclude 0."""

    workers: int | None  #: None when the curve's band never clears 0 (not shown to help at any size)
    fitted: int | None  #: what the fitted curve alone says (even when its band does not back it)
    optimistic: int | None  #: with the band's upper edge of the curve
    pessimistic: int | None  #: with the band's lower edge (None: the band reaches 0 or below)
    asymptote: float
    per_worker_sd: float
    sentence: str


def _first_n(curve: Callable[[np.ndarray], np.ndarray], s: float, z: float, folds: int,
             grid: np.ndarray) -> int | None:
    lower = curve(grid * (folds - 1) / folds) - z * s / np.sqrt(grid)
    ok = np.flatnonzero(lower > 0)
    return int(grid[ok[0]]) if len(ok) else None


def workers_needed(
    fit: CurveFit, draws: pd.DataFrame, *, config: CurveConfig = DEFAULT_CURVE_CONFIG, model: str = TARGET_MODEL,
) -> WorkersNeeded:
    """Smallest study (workers) whose difference interval is expected to exclude 0.

    ``draws`` are one model's per-repeat rows of :func:`worker_curve`; the per-worker spread ``s``
    of the difference is ``diff_se * sqrt(workers_test)`` at the largest size (median over repeats).
    """
    z = _z(config.level)
    top = draws[draws["n"] == draws["n"].max()]
    s = float(np.median(top["diff_se"] * np.sqrt(top["workers_test"])))
    grid = np.arange(max(config.planned_folds, 4), config.max_workers + 1, dtype=float)
    n_obs = int(draws["n"].max())
    point = _first_n(fit.predict, s, z, config.planned_folds, grid)
    optimistic = _first_n(lambda n: fit.band(n, config.level)[1], s, z, config.planned_folds, grid)
    pessimistic = _first_n(lambda n: fit.band(n, config.level)[0], s, z, config.planned_folds, grid)
    asymptote = float(fit.params[0])
    fitted = point
    level = f"{round(config.level * 100)} %"
    if point is None:
        sentence = (f"{model}: the difference to length-only levels off at {asymptote:+.3f}; no study of up to "
                    f"{config.max_workers} workers is expected to show it above 0 with a {level} interval.")
    elif pessimistic is None:
        sentence = (f"{model}: not shown to rise above length-only: the curve's {level} band still includes no "
                    f"gain at {config.max_workers} workers, so no study size can be promised (if the fitted "
                    f"curve is right, levelling off at {asymptote:+.3f}, about {point} workers).")
        point = None
    else:
        sentence = (f"{model}: about {point} workers (band {optimistic}–{pessimistic}) before the {level} "
                    f"interval of its difference to length-only is expected to exclude 0 (curve fitted on up "
                    f"to {n_obs} training workers; at that size the lower bound clears 0 in about half of "
                    f"studies).")
    return WorkersNeeded(point, fitted, optimistic, pessimistic, asymptote, s, sentence)


# --- votes for a leaderboard -------------------------------------------------------------------


@dataclass
class VotesNeeded:
    """Votes (between the two models) and workers that separate a true Elo gap."""

    gap: float
    votes: int
    total_votes: int
    workers: int


def vote_design_effect(votes: pd.DataFrame, *, rounds: int = 300, seed: int = 0) -> float:
    """Variance of the strengths under a worker bootstrap over that under a vote bootstrap.

    Votes of one worker share habits (side bias, taste), so they carry less information than as
    many independent votes; this ratio (≥ 1 when they do) scales every vote count below. Needs
    ``model_a, model_b, outcome, worker``.
    """
    from analysis.leaderboard.bradley_terry import bootstrap_weights, fit_logistic, model_design

    models = sorted(set(votes["model_a"]) | set(votes["model_b"]))
    X = model_design(votes, models)
    y = votes["outcome"].to_numpy(float)
    by_worker = fit_logistic(X, y, bootstrap_weights(votes["worker"].to_numpy(), sorted(set(votes["worker"])),
                                                     rounds, seed))
    by_vote = fit_logistic(X, y, bootstrap_weights(np.arange(len(votes)), np.arange(len(votes)), rounds, seed))
    centred_w = by_worker - by_worker.mean(axis=1, keepdims=True)
    centred_v = by_vote - by_vote.mean(axis=1, keepdims=True)
    return float(np.mean(centred_w.var(axis=0)) / np.mean(centred_v.var(axis=0)))


def votes_needed(
    gaps: Sequence[float] = (10, 25, 50), *, design_effect: float = 1.0, level: float = 0.95, power: float = 0.8,
    models: int = 2, votes_per_worker: float = 1.0,
) -> list[VotesNeeded]:
    """Votes between two models whose true gap is ``gap`` Elo points so that, with probability
    ``power``, their ``level`` intervals do not overlap.

    With two models and centred strengths each interval is half the difference's, so "no overlap"
    is "the difference's interval excludes 0": ``V = deff (z + z_power)^2 / (p (1 - p) d^2)`` with
    ``d`` the gap in logits and ``p`` the win rate it implies. ``total_votes`` spreads them over
    all ``models`` (uniform pairs), ``workers`` divides by the votes a worker gives.
    """
    from analysis.leaderboard.bradley_terry import ELO_PER_LOGIT

    z, zp = _z(level), float(stats.norm.ppf(power))
    pairs = models * (models - 1) / 2
    out = []
    for gap in gaps:
        d = gap / ELO_PER_LOGIT
        p = 1.0 / (1.0 + np.exp(-d))
        v = int(np.ceil(max(design_effect, 1.0) * (z + zp) ** 2 / (p * (1 - p) * d * d)))
        total = int(np.ceil(v * pairs))
        out.append(VotesNeeded(float(gap), v, total, int(np.ceil(total / max(votes_per_worker, 1e-9)))))
    return out


def simulate_separation(gap: float, votes: int, *, workers: int, design_effect: float = 1.0, level: float = 0.95,
                        sims: int = 200, rounds: int = 200, seed: int = 0) -> float:
    """Share of simulated two-model studies whose worker-bootstrap interval of the difference
    excludes 0 (the check of :func:`votes_needed` by resampling, used by the tests).

    Worker effects on the logit are drawn with the variance that gives ``design_effect`` for
    ``votes / workers`` votes per worker (``deff = 1 + (m - 1) ICC``).
    """
    from analysis.leaderboard.bradley_terry import ELO_PER_LOGIT, bootstrap_weights, fit_logistic

    rng = np.random.default_rng(seed)
    m = votes / workers
    icc = 0.0 if m <= 1 else max(design_effect - 1.0, 0.0) / (m - 1)
    tau = np.sqrt(icc / max(1 - icc, 1e-9) * np.pi ** 2 / 3) if icc > 0 else 0.0
    d = gap / ELO_PER_LOGIT
    hits = 0
    for _ in range(sims):
        w = rng.integers(0, workers, size=votes)
        u = rng.normal(0, tau, size=workers)[w]
        y = (rng.random(votes) < 1 / (1 + np.exp(-(d + u)))).astype(float)
        X = np.ones((votes, 1))
        beta = fit_logistic(X, y, bootstrap_weights(w, np.arange(workers), rounds, int(rng.integers(1 << 31))))
        lo, hi = np.quantile(beta[:, 0], [(1 - level) / 2, (1 + level) / 2])
        hits += int(lo > 0)
    return hits / sims


# --- the whole answer --------------------------------------------------------------------------


@dataclass
class PlanResult:
    curve: pd.DataFrame
    draws: pd.DataFrame
    fits: dict[str, CurveFit]
    needed: WorkersNeeded
    votes: list[VotesNeeded] = field(default_factory=list)
    design_effect: float | None = None
    timings: dict = field(default_factory=dict)

    def as_json(self, model: str = TARGET_MODEL) -> dict:
        """``curve`` (points), ``fit`` (parameters and band on a grid), ``workers_needed`` and
        ``votes_needed``: what the job stores and the command writes."""
        n_max = int(self.curve["n"].max())
        grid = np.unique(np.round(np.geomspace(2, max(4 * n_max, 64), 60))).astype(int)
        fits = {}
        for name, fit in self.fits.items():
            lo, hi = fit.band(grid)
            fits[name] = {"params": dict(zip(("a", "b", "c"), fit.params, strict=True)), "n": grid.tolist(),
                          "value": fit.predict(grid).round(5).tolist(), "lo": lo.round(5).tolist(),
                          "hi": hi.round(5).tolist()}
        return {
            "model": model,
            "baseline": LENGTH_BASELINE,
            "curve": [_plain_row(r) for r in self.curve.to_dict("records")],
            "fit": fits,
            "workers_needed": self.needed.workers,
            "workers_needed_detail": asdict(self.needed),
            "votes_needed": [asdict(v) for v in self.votes],
            "design_effect": self.design_effect,
            "timings": self.timings,
        }


def _plain_row(r: dict) -> dict:
    return {k: (v if isinstance(v, str) else (None if pd.isna(v) else (int(v) if isinstance(v, int | np.integer)
                                                                        else round(float(v), 5))))
            for k, v in r.items()}


def plan_study(
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    specs: Sequence[ModelSpec] | None = None,
    eval_config: EvalConfig | None = None,
    config: CurveConfig = DEFAULT_CURVE_CONFIG,
    votes: pd.DataFrame | None = None,
    model: str = TARGET_MODEL,
    progress: Callable[[float, str], None] | None = None,
) -> PlanResult:
    """The learning curve, its fit, the workers needed, and (with ``votes``) the votes needed."""
    t0 = time.perf_counter()
    curve, draws = worker_curve(X, y, groups, specs=specs, eval_config=eval_config, config=config,
                                progress=progress)
    t1 = time.perf_counter()
    fits = {}
    for name, part in draws.groupby("model", sort=False):
        # accuracy curves are drawn without a band (the plot's dashed lines): no refits needed
        fits[f"{name}:accuracy"] = fit_power_law(part, "accuracy", n_draws=0, seed=config.seed)
    target = draws[draws["model"] == model]
    if target.empty:
        raise ValueError(f"model {model!r} is not among the fitted models")
    fits["diff"] = fit_power_law(target, "diff", n_draws=config.band_draws, seed=config.seed)
    needed = workers_needed(fits["diff"], target, config=config, model=model)
    deff, vn = None, []
    if votes is not None and len(votes):
        deff = vote_design_effect(votes)
        per_worker = float(votes.groupby("worker").size().mean())
        n_models = len(set(votes["model_a"]) | set(votes["model_b"]))
        vn = votes_needed(design_effect=deff, level=config.level, models=n_models, votes_per_worker=per_worker)
    return PlanResult(curve, draws, fits, needed, vn, deff,
                      {"curve_s": round(t1 - t0, 1), "total_s": round(time.perf_counter() - t0, 1)})


def votes_sentence(votes: Sequence[VotesNeeded], design_effect: float | None) -> str:
    if not votes:
        return ""
    parts = ", ".join(f"{v.gap:g} Elo: {v.votes} votes between the two ({v.total_votes} in all, ~{v.workers} workers)"
                      for v in votes)
    deff = (f" (design effect of workers {design_effect:.2f}, measured by resampling workers against votes"
            f"{'; taken as 1' if design_effect < 1 else ''})" if design_effect else "")
    return f"To separate two models with 80 % power{deff}: {parts}."



# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from analysis.transfer import _features_of

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release_dir")
    parser.add_argument("--json", dest="json_out")
    parser.add_argument("--repeats", type=int, default=DEFAULT_CURVE_CONFIG.repeats)
    parser.add_argument("--sizes", default="", help="comma-separated training sizes (default 8, 16, ...)")
    parser.add_argument("--trees", type=int, default=50)
    parser.add_argument("--mode", choices=["pairwise", "pointwise"], default="pairwise")
    args = parser.parse_args(argv)
    from analysis.leaderboard.votes import explicit_votes
    from analysis.pipeline import labelled_set, reward_run_config

    t0 = time.perf_counter()
    features, queries = _features_of(args.release_dir)
    data = labelled_set(features, queries, args.mode)
    eval_config, specs, point_specs = reward_run_config({"trees": args.trees, "seeds": [0]})
    config = CurveConfig(repeats=args.repeats, sizes=tuple(int(s) for s in args.sizes.split(",") if s))
    try:
        votes = explicit_votes(queries)
    except (KeyError, ValueError):
        votes = None
    result = plan_study(data.X, data.y.to_numpy(), data.groups.to_numpy(),
                        specs=specs if args.mode == "pairwise" else point_specs, eval_config=eval_config,
                        config=config, votes=votes,
                        progress=lambda pct, msg: print(f"  {pct:5.1f} %  {msg}", file=sys.stderr))
    result.timings["wall_s"] = round(time.perf_counter() - t0, 1)
    print(format_curve(result))
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(result.as_json(), fh, indent=2)
    return 0


def format_curve(result: PlanResult, model: str = TARGET_MODEL) -> str:
    """Plain-text table of the curve for ``model`` and the length-only model, and the answers."""
    c = result.curve
    lines = [f"{'n':>4}  {'length-only':>22}  {model + ' accuracy':>22}  {'difference':>26}"]
    for n, part in c.groupby("n"):
        b = part[part["model"] == LENGTH_BASELINE].iloc[0]
        m = part[part["model"] == model].iloc[0]
        lines.append(f"{n:>4}  {b.accuracy:.3f} [{b.acc_lo:.3f}, {b.acc_hi:.3f}]  "
                     f"{m.accuracy:.3f} [{m.acc_lo:.3f}, {m.acc_hi:.3f}]  "
                     f"{m['diff']:+.3f} [{m.diff_lo:+.3f}, {m.diff_hi:+.3f}]")
    a, b, cc = result.fits["diff"].params
    lines.append(f"fit: difference(n) = {a:+.4f} - {b:+.4f} * n^-{cc:.3f}")
    lines.append(result.needed.sentence)
    vs = votes_sentence(result.votes, result.design_effect)
    if vs:
        lines.append(vs)
    lines.append(f"time: {result.timings}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
