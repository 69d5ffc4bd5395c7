"""Reading behaviour over normalised time (paper Figs. 3-8, 17-25)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.cluster import BisectingKMeans

from analysis.features.matching import TaskMatch, order_turns

SIDE_NAMES = {"pairwise": {1: "left", 2: "right"}, "pointwise": {1: "single"}}


def trajectory_points(matches: Mapping[tuple[str, int], TaskMatch], queries: pd.DataFrame) -> pd.DataFrame:
    """Directly matched on-text samples with normalised time and position.

    Normalised time rescales each turn's reviewing phase (first to last direct match) to
    [0, 1], so turns of different durations share one axis (paper section 4).

    Returns
    -------
    DataFrame
        ``query_id``, ``worker``, ``mode``, ``side`` (left/right/single), ``signal``,
        ``t_norm``, ``char``, ``norm_char`` (char / response length), ``response_length``.
    """
    parts = []
    for (worker, task_id), match in matches.items():
        inst = match.instants
        turns = order_turns(queries[(queries["worker"] == worker) & (queries["task_id"] == task_id)])
        direct = inst[inst["rule"] == "response"]
        if direct.empty or turns.empty:
            continue
        mode = "pairwise" if turns["mode"].eq("pairwise").any() else "pointwise"
        for qid, r1, r2 in zip(turns["query_id"], turns["response_1"], turns["response_2"], strict=False):
            d = direct[direct["turn"] == qid]
            if len(d) < 2:
                continue
            t = d["epoch_ms"].to_numpy(dtype=float)
            span = t.max() - t.min()
            t_norm = (t - t.min()) / span if span > 0 else np.zeros(len(t))
            for box, text in ((1, r1), (2, r2)):
                if box not in SIDE_NAMES[mode] or not text:
                    continue
                char = d[f"b{box}_char_index"].to_numpy(dtype=float)
                on = ~np.isnan(char) & (d[f"b{box}_x"].to_numpy(dtype=float) >= 0)
                parts.append(pd.DataFrame({
                    "query_id": int(qid), "worker": worker, "mode": mode, "side": SIDE_NAMES[mode][box],
                    "signal": d["signal"].to_numpy()[on], "t_norm": t_norm[on], "char": char[on],
                    "norm_char": char[on] / len(text), "response_length": len(text),
                }))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def length_groups(lengths: pd.Series, bounds: tuple[float, float] | None = None) -> pd.Series:
    """short / medium / long by response length (tertiles unless ``bounds`` are given)."""
    if bounds is None:
        bounds = tuple(np.nanquantile(lengths.to_numpy(dtype=float), [1 / 3, 2 / 3]))
    return pd.cut(lengths, [-np.inf, bounds[0], bounds[1], np.inf], labels=["short", "medium", "long"])


def _binned_mean(df: pd.DataFrame, value: str, n_bins: int) -> pd.Series:
    bins = np.minimum((df["t_norm"] * n_bins).astype(int), n_bins - 1)
    return df.groupby(bins)[value].mean().reindex(range(n_bins))


def reading_position(points: pd.DataFrame, by: str = "length", *, signal: str = "gaze", n_bins: int = 20) -> Figure:
    """Mean reading position (character) over normalised time, one line per group.

    ``by="length"``: short/medium/long responses (Fig. 4, 17); ``by="side"``: left, right and
    single (Fig. 6).
    """
    df = points[points["signal"] == signal].copy()
    df["group"] = length_groups(df["response_length"]) if by == "length" else df["side"]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    x = (np.arange(n_bins) + 0.5) / n_bins
    for name, part in df.groupby("group", observed=True):
        ax.plot(x, _binned_mean(part, "char", n_bins).to_numpy(), marker="o", ms=3, label=str(name))
    ax.set_xlabel("normalised time")
    ax.set_ylabel(f"mean {signal} character index")
    ax.legend(title=by)
    return fig


def reading_heatmap(points: pd.DataFrame, *, signal: str = "gaze", char_bin: int = 20, max_char: int = 2000,
                    n_bins: int = 20) -> Figure:
    """Share of samples per character bin (x) and normalised-time bin (y), per side (Fig. 3)."""
    df = points[(points["signal"] == signal) & (points["char"] < max_char)]
    sides = list(dict.fromkeys(df["side"]))
    fig = Figure(figsize=(5 * max(len(sides), 1), 4))
    axes = np.atleast_1d(fig.subplots(1, max(len(sides), 1)))
    for ax, side in zip(axes, sides, strict=False):
        part = df[df["side"] == side]
        h, _, _ = np.histogram2d(part["t_norm"], part["char"], bins=[n_bins, max_char // char_bin],
                                 range=[[0, 1], [0, max_char]])
        im = ax.imshow(h / max(h.sum(), 1), aspect="auto", origin="lower", extent=[0, max_char, 0, 1])
        ax.set_title(side)
        ax.set_xlabel("character index")
        ax.set_ylabel("normalised time")
        fig.colorbar(im, ax=ax)
    return fig


def trajectory_matrix(points: pd.DataFrame, *, signal: str = "gaze", n_bins: int = 20) -> pd.DataFrame:
    """One row per (query, side): mean normalised position in each time bin, gaps interpolated.

    Empty bins are interpolated from their neighbours (not set to 0, which is a position);
    trajectories with fewer than half the bins observed are dropped.
    """
    df = points[points["signal"] == signal]
    bins = np.minimum((df["t_norm"] * n_bins).astype(int), n_bins - 1)
    wide = df.assign(bin=bins).pivot_table(index=["query_id", "side"], columns="bin", values="norm_char",
                                           aggfunc="mean").reindex(columns=range(n_bins))
    wide = wide[wide.notna().sum(axis=1) >= n_bins / 2]
    return wide.interpolate(axis=1, limit_direction="both")


def cluster_trajectories(
    matrix: pd.DataFrame, n_clusters: int = 6, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, Figure]:
    """BisectingKMeans clusters of trajectories (Fig. 8).

    Returns
    -------
    labels : ndarray, shape (n_trajectories,)
    centers : ndarray, shape (n_clusters, n_bins)
    figure : the centres, with cluster sizes in the legend
    """
    km = BisectingKMeans(n_clusters=n_clusters, random_state=seed).fit(matrix.to_numpy())
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    x = (np.arange(matrix.shape[1]) + 0.5) / matrix.shape[1]
    for c, center in enumerate(km.cluster_centers_):
        ax.plot(x, center, label=f"cluster {c} (n={int((km.labels_ == c).sum())})")
    ax.set_xlabel("normalised time")
    ax.set_ylabel("normalised position")
    ax.legend(fontsize=7)
    return km.labels_, km.cluster_centers_, fig


def gaze_mouse_correlation(points: pd.DataFrame, n_bins: int = 20) -> tuple[pd.DataFrame, Figure]:
    """Pearson correlation of binned gaze and mouse positions, per query/side and per user
    (Figs. 23-25).

    Returns
    -------
    per_query : DataFrame
        ``query_id``, ``side``, ``worker``, ``r``.
    figure : histograms per query and per user.
    """
    mats = {s: trajectory_matrix(points, signal=s, n_bins=n_bins) for s in ("gaze", "mouse")}
    common = mats["gaze"].index.intersection(mats["mouse"].index)
    g, m = mats["gaze"].loc[common].to_numpy(), mats["mouse"].loc[common].to_numpy()
    gc, mc = g - g.mean(1, keepdims=True), m - m.mean(1, keepdims=True)
    denom = np.sqrt((gc**2).sum(1) * (mc**2).sum(1))
    r = np.where(denom > 0, (gc * mc).sum(1) / np.where(denom > 0, denom, 1), np.nan)
    workers = points.drop_duplicates("query_id").set_index("query_id")["worker"]
    per_query = pd.DataFrame({"query_id": common.get_level_values(0), "side": common.get_level_values(1), "r": r})
    per_query["worker"] = per_query["query_id"].map(workers)
    fig = Figure(figsize=(10, 4))
    a1, a2 = fig.subplots(1, 2)
    a1.hist(per_query["r"].dropna(), bins=20)
    a1.set_title("per query")
    a2.hist(per_query.groupby("worker")["r"].mean().dropna(), bins=20)
    a2.set_title("per user (mean)")
    for ax in (a1, a2):
        ax.set_xlabel("gaze-mouse correlation")
    return per_query, fig


def position_distributions(points: pd.DataFrame, by: str = "length", *, signal: str = "gaze") -> Figure:
    """Distribution of normalised reading positions by length group or setting (Figs. 19-22)."""
    df = points[points["signal"] == signal].copy()
    df["group"] = length_groups(df["response_length"]) if by == "length" else df["side"]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for name, part in df.groupby("group", observed=True):
        ax.hist(part["norm_char"].clip(0, 1), bins=25, range=(0, 1), density=True, histtype="step", label=str(name))
    ax.set_xlabel("normalised position")
    ax.set_ylabel("density")
    ax.legend(title=by)
    return fig
