"""HTML of the reward-model run pages: the verdict, the interval tables, Table 2 and the comparison.

What a run's page must answer first is whether behaviour beats answer length on workers the
models never saw. The run stores that in ``report["intervals"]`` (per setting, protocol and
model: accuracy with a 95 % worker-bootstrap interval, the paired difference to the length-only
model with its interval, AUC, ECE, Brier); the wording of the verdict is
:mod:`analysis.reward.verdict` (pure). Table 2 (mean ± SD over seeds) follows as the seed spread,
which is not an uncertainty about new workers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from analysis.reward.verdict import (
    LEAKY,
    LENGTH_BASELINE,
    PROTOCOL_TITLES,
    ordered_protocols,
    other_claims,
    setting_verdicts,
    signed,
    verdict,
    verdict_protocol,
)


def _join(parts: Sequence[str]) -> SafeString:
    return mark_safe("".join(parts))


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


def _ci_cell(value, lo, hi, *, sign: bool = False) -> str:
    """A number with its interval on a second, quieter line."""
    if _num(value) is None:
        return mark_safe("<td>–</td>")
    head = signed(value) if sign else f"{value:.3f}"
    if _num(lo) is None or _num(hi) is None:
        return format_html("<td>{}</td>", head)
    fmt = signed if sign else (lambda v: f"{v:.3f}")
    return format_html('<td>{} <span class="ci">[{}, {}]</span></td>', head, fmt(lo), fmt(hi))


def _plain(value, digits: int = 3) -> str:
    return format_html("<td>{}</td>", f"{value:.{digits}f}" if _num(value) is not None else "–")


def intervals_by_setting(run) -> dict[str, list[dict]]:
    """``report["intervals"]`` of a run (setting -> rows); {} for runs that stored none."""
    intervals = (run.report or {}).get("intervals") or {}
    return {k: list(v) for k, v in intervals.items() if v}


def verdict_html(intervals: Mapping[str, Sequence[Mapping]]) -> str:
    """One plain sentence per setting, e.g. "Pairwise: RF + IF: +0.011 [−0.029, +0.068] over length
    on new workers: not shown to help"."""
    found = setting_verdicts(intervals)
    if not found:
        return format_html('<p class="ifllm-note">{}</p>',
                           "This run stored no worker intervals, so it gives no verdict.")
    items = format_html_join("", '<li class="verdict verdict-{}"><strong>{}</strong> — {}</li>', (
        (v["verdict"].replace(" ", "-"), v["setting"], v["sentence"]) for v in found))
    others = other_claims(intervals)
    also = format_html(
        '<p class="ifllm-note ifllm-others">{} {}</p>', "Other models with an interval wholly on one side of 0:",
        "; ".join(f"{o['setting']}: {o['model']} {o['text']} ({o['verdict']}, one of {o['compared']} models "
                  "compared, so one such interval can come by chance)" for o in others)) if others else ""
    return format_html(
        '<ul class="ifllm-verdicts">{}</ul>{}<p class="ifllm-note">{}</p>', items, also,
        "Helps / hurts: the 95 % interval of the paired difference to the length-only model, from a bootstrap "
        "over workers, lies wholly above / below 0; otherwise not shown to help. Read from the first protocol "
        "that holds out workers (worker-grouped CV, or the transfer's test workers).")


def intervals_html(intervals: Mapping[str, Sequence[Mapping]]) -> str:
    """Per setting and protocol (new-worker protocols first, the paper's marked leaky): accuracy
    [interval over workers], difference to length-only [paired interval], its verdict, AUC, ECE,
    Brier (and the calibrated ECE/Brier where the run calibrated)."""
    parts = []
    for setting, rows in intervals.items():
        for protocol in ordered_protocols(str(r.get("protocol")) for r in rows):
            group = [r for r in rows if r.get("protocol") == protocol]
            calibrated = any(_num(r.get("ece_cal")) is not None for r in group)
            body = []
            for r in group:
                baseline = r.get("model") == LENGTH_BASELINE
                diff = format_html("<td>{}</td>", "baseline") if baseline else \
                    _ci_cell(r.get("diff"), r.get("diff_lo"), r.get("diff_hi"), sign=True)
                said = "" if baseline else verdict(r.get("diff_lo"), r.get("diff_hi"))
                cells = [_ci_cell(r.get("accuracy"), r.get("acc_lo"), r.get("acc_hi")), diff,
                         format_html('<td class="verdict-{}">{}</td>', said.replace(" ", "-"), said),
                         _plain(r.get("auc")), _plain(r.get("ece")), _plain(r.get("brier"), 4)]
                if calibrated:
                    cells += [_plain(r.get("ece_cal")), _plain(r.get("brier_cal"), 4)]
                label = f"{r.get('model')} (length-only baseline)" if baseline else str(r.get("model"))
                body.append(format_html("<tr><th>{}</th>{}</tr>", label, _join(cells)))
            heads = ["model", "accuracy [95 % over workers]", "Δ vs length-only [95 %, paired]", "verdict", "AUC",
                     "ECE", "Brier"] + (["ECE calibrated", "Brier calibrated"] if calibrated else [])
            n_rows = max((int(r.get("n_test") or 0) for r in group), default=0)
            n_workers = max((int(r.get("workers_test") or 0) for r in group), default=0)
            leaky = protocol in LEAKY
            parts.append(format_html(
                '<div class="ifllm-scroll"><table class="ifllm-results ifllm-intervals{}" data-protocol="{}">'
                '<caption>{} · {} <span class="help">{} rows, {} workers{}</span></caption>'
                "<thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>",
                " leaky" if leaky else "", protocol, setting, PROTOCOL_TITLES.get(protocol, protocol), n_rows,
                n_workers, " — optimistic: do not read a verdict from it" if leaky else "",
                format_html_join("", "<th>{}</th>", ((h,) for h in heads)), _join(body)))
    return _join(parts)


def table2_html(rows: list[dict]) -> str:
    """Table 2 (mean ± SD over seeds) per setting and protocol, in the order of
    :func:`intervals_html`. No cell is marked best: the seed spread reshuffles folds and forests on
    the same workers, so a difference of means here is no evidence for new workers."""
    from analysis.reward.evaluate import METRIC_LABELS, METRICS

    parts = []
    for setting in dict.fromkeys(r["setting"] for r in rows):
        mine = [r for r in rows if r["setting"] == setting]
        for protocol in ordered_protocols(r["protocol"] for r in mine):
            group = [r for r in mine if r["protocol"] == protocol]

            def cell(r: dict, m: str) -> str:
                mean, sd = r.get(f"{m}_mean"), r.get(f"{m}_std")
                if mean is None:
                    return mark_safe("<td>–</td>")
                return format_html("<td>{}</td>", f"{mean:.3f}" + (f" ± {sd:.3f}" if sd is not None else ""))

            body = format_html_join("", "<tr><th>{}</th>{}</tr>", (
                (r["model"] + (" (length-only baseline)" if r["model"] == LENGTH_BASELINE else ""),
                 _join([cell(r, m) for m in METRICS])) for r in group))
            head = format_html_join("", "<th>{}</th>", ((METRIC_LABELS[m],) for m in METRICS))
            parts.append(format_html(
                '<div class="ifllm-scroll"><table class="ifllm-results{}"><caption>{} · {}</caption>'
                "<thead><tr><th>model</th>{}</tr></thead><tbody>{}</tbody></table></div>",
                " leaky" if protocol in LEAKY else "", setting, PROTOCOL_TITLES.get(protocol, protocol), head, body))
    note = format_html('<p class="ifllm-note">{}</p>', "Mean ± standard deviation over seeds: the spread of reshuffled "
                       "folds and forests on the same workers, not an interval for new workers (see the table "
                       "above).")
    return format_html("{}{}", note, _join(parts))


def plot_rows(run) -> list[dict]:
    """The rows the run's plot draws: its worker intervals, or its seed means where it has none."""
    from analysis.plots.results import seed_rows_as_intervals

    intervals = intervals_by_setting(run)
    if intervals:
        return [{"setting": s, **r} for s, rows in intervals.items() for r in rows]
    return seed_rows_as_intervals(run.results or [])


# --------------------------------------------------------------------------- two runs
def _key(row: Mapping) -> tuple[str, str, str]:
    return str(row.get("setting")), str(row.get("protocol")), str(row.get("model"))


def compare_html(label_a: str, rows_a: Sequence[Mapping], label_b: str, rows_b: Sequence[Mapping],
                 paired: Mapping[tuple[str, str, str], Mapping] | None = None) -> str:
    """One table per setting and protocol that both runs hold: each run's accuracy and difference
    to length-only with their intervals, Δ between the runs (paired interval where ``paired`` has
    one for the cell), and each run's ECE and Brier with their Δ."""
    paired = paired or {}
    a = {_key(r): r for r in rows_a}
    b = {_key(r): r for r in rows_b}
    parts = []
    settings = list(dict.fromkeys(k[0] for k in [*a, *b]))
    for setting in settings:
        protocols = ordered_protocols(k[1] for k in [*a, *b] if k[0] == setting)
        for protocol in protocols:
            models = list(dict.fromkeys(k[2] for k in [*a, *b] if k[:2] == (setting, protocol)))
            body = []
            for model in models:
                ra, rb = a.get((setting, protocol, model), {}), b.get((setting, protocol, model), {})
                p = paired.get((setting, protocol, model))
                stored = signed(rb["accuracy"] - ra["accuracy"]) if _num(ra.get("accuracy")) is not None \
                    and _num(rb.get("accuracy")) is not None else "–"
                if p is not None and _num(p.get("diff")) is not None:
                    delta = format_html('<td>{} <span class="ci">paired {}</span> <span class="ci">[{}, {}]</span>'
                                        "</td>", stored, signed(p["diff"]), signed(p["diff_lo"]), signed(p["diff_hi"]))
                else:
                    delta = format_html("<td>{}</td>", stored)
                cells = [_ci_cell(ra.get("accuracy"), ra.get("acc_lo"), ra.get("acc_hi")),
                         _ci_cell(rb.get("accuracy"), rb.get("acc_lo"), rb.get("acc_hi")), delta]
                for r in (ra, rb):
                    cells.append(format_html("<td>{}</td>", "baseline") if model == LENGTH_BASELINE
                                 else _ci_cell(r.get("diff"), r.get("diff_lo"), r.get("diff_hi"), sign=True))
                for metric, digits in (("ece", 3), ("brier", 4)):
                    va, vb = _calibration(ra, metric), _calibration(rb, metric)
                    cells += [_plain(va, digits), _plain(vb, digits),
                              format_html("<td>{}</td>", signed(vb - va, digits) if va is not None and vb is not None
                                          else "–")]
                body.append(format_html("<tr><th>{}</th>{}</tr>", model, _join(cells)))
            heads = [("model", ""), (f"accuracy {label_a}", "a"), (f"accuracy {label_b}", "b"),
                     ("Δ accuracy (B − A)", "delta"), (f"Δ vs length {label_a}", "a"), (f"Δ vs length {label_b}", "b"),
                     (f"ECE {label_a}", "a"), (f"ECE {label_b}", "b"), ("Δ ECE", "delta"),
                     (f"Brier {label_a}", "a"), (f"Brier {label_b}", "b"), ("Δ Brier", "delta")]
            parts.append(format_html(
                '<div class="ifllm-scroll"><table class="ifllm-results ifllm-compare-table{}" data-protocol="{}">'
                "<caption>{} · {}</caption><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>",
                " leaky" if protocol in LEAKY else "", protocol, setting, PROTOCOL_TITLES.get(protocol, protocol),
                format_html_join("", '<th class="{}">{}</th>', ((cls, h) for h, cls in heads)), _join(body)))
    note = format_html(
        '<p class="ifllm-note">{}</p>',
        "A = the first run, B = the second. Δ accuracy is B − A of the two accuracies shown; under it, where both "
        "runs stored predictions of the same turns (pairwise), the paired difference with its 95 % interval from a "
        "bootstrap over workers, computed on each run's out-of-fold predictions averaged over its seeds (so its "
        "point can differ from the one above, which pools the seeds). ECE and Brier: the calibrated figures where "
        "a run calibrated, else the raw ones. Intervals under each accuracy are 95 % over workers.")
    return format_html("{}{}", note, _join(parts))


def _calibration(row: Mapping, metric: str) -> float | None:
    """The calibrated figure where the run calibrated, else the raw one."""
    return _num(row.get(f"{metric}_cal")) if _num(row.get(f"{metric}_cal")) is not None else _num(row.get(metric))


def compare_plot_rows(label_a: str, rows_a: Sequence[Mapping], label_b: str, rows_b: Sequence[Mapping]) -> list[dict]:
    """Both runs' rows under the protocol their verdicts read (worker-grouped, else transfer), with
    a ``run`` key, for :func:`analysis.plots.results.interval_figure` with ``series="run"``."""
    out = []
    for label, rows in ((label_a, rows_a), (label_b, rows_b)):
        protocol = verdict_protocol(str(r.get("protocol")) for r in rows)
        out += [{**r, "run": label} for r in rows if r.get("protocol") == protocol]
    return out


def paired_run_differences(run_a, run_b) -> dict[tuple[str, str, str], dict]:
    """Δ accuracy (B − A) per (``"Pairwise"``, protocol, model) on the turns both runs predicted,
    with a paired 95 % interval from a bootstrap over workers (the runs' stored out-of-fold
    predictions, averaged over each run's seeds); {} where they share no predictions."""
    import pandas as pd

    from analysis.models import RewardPrediction
    from analysis.reward.intervals import worker_bootstrap

    def frame(run) -> pd.DataFrame:
        rows = RewardPrediction.objects.filter(run=run, label__isnull=False).values(
            "turn_id", "model_name", "protocol", "predicted", "label", "turn__task__worker__pseudonym")
        return pd.DataFrame(list(rows))

    fa, fb = frame(run_a), frame(run_b)
    if fa.empty or fb.empty:
        return {}
    both = fa.merge(fb, on=["turn_id", "model_name", "protocol"], suffixes=("_a", "_b"))
    out = {}
    for (model, protocol), part in both.groupby(["model_name", "protocol"], sort=False):
        correct_a = (part["predicted_a"] == part["label_a"]).to_numpy(float)
        correct_b = (part["predicted_b"] == part["label_b"]).to_numpy(float)
        ci = worker_bootstrap(correct_b, part["turn__task__worker__pseudonym_a"].to_numpy(),
                              baseline_correct=correct_a)
        out[("Pairwise", str(protocol), str(model))] = {"diff": ci["diff"], "diff_lo": ci["diff_lo"],
                                                          "diff_hi": ci["diff_hi"], "n": len(part)}
    return out
