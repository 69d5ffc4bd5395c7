"""The eye-tracking report of a selection of tasks (pure: no Django).

Eye-tracking papers are expected to report the tracker, the sampling rate, accuracy, precision,
data loss and exclusions (the minimal reporting guideline of Dunn et al., Behavior Research
Methods 2023). Everything here is computed from what the site stores for every task, old or new:
the raw validation predictions the browser sent (``CalibrationAttempt.raw["points"]``), the gaze
and mouse samples, and the QC rows; so the report works on data collected before any of the
figures were stored, and on the imported release.

Definitions (stated in every report):

* **sampling rate** of a task: intervals per second between consecutive logged frames, counting
  only intervals shorter than ``gap_s`` (a longer pause is missing data, not a slow clock); frames
  at exactly 10 Hz give 10 Hz whatever the pauses;
* **accuracy** at a validation target: mean distance of the predictions to the target;
* **precision** at a target: RMS of the sample-to-sample distance of the predictions while the
  worker looked at it (RMS-S2S);
* **degrees of visual angle** of a distance ``s`` on the screen: ``2 atan(s / 2D)`` with ``D`` the
  viewing distance; CSS pixels become centimetres through the screen size the browser reported
  (``screen.width``/``height``, CSS pixels) and an assumed physical screen diagonal: both
  assumptions are report parameters and are written in the report;
* **data loss**: share of logged gaze frames without a face or without a prediction (the site
  logs such frames; the release logged only frames with a prediction, so for it this is "not
  recorded"), and, for both, the share of the recording time inside pauses of ``gap_s`` or more.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from collection.sampling import achieved_rates
from collection.sampling import instant_rows as qc_instants

#: What the report writes where a figure does not exist in the imported release.
NOT_IN_RELEASE = "not recorded in the release"
#: ... and for site tasks recorded before the site stored that figure.
NOT_RECORDED = "not recorded for these tasks"

SITE, RELEASE = "site", "release"
GROUP_LABELS = {SITE: "Site tasks", RELEASE: "Imported release"}


@dataclass(frozen=True)
class ReportParams:
    """Assumptions of the report (written into it).

    The browser reports the screen size in CSS pixels but not its physical size, so degrees need
    an assumed diagonal; 15.6 inches is the commonest laptop screen, 60 cm a usual viewing
    distance for a laptop.
    """

    viewing_distance_cm: float = 60.0
    screen_diagonal_in: float = 15.6
    gap_s: float = 2.0

    def __post_init__(self) -> None:
        for name in ("viewing_distance_cm", "screen_diagonal_in", "gap_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value!r}")


# --------------------------------------------------------------------------- geometry
def cm_per_css_px(screen_w: float, screen_h: float, *, diagonal_in: float) -> float:
    """Centimetres per CSS pixel of a screen of ``screen_w`` x ``screen_h`` CSS pixels whose
    physical diagonal is ``diagonal_in`` inches (square pixels)."""
    if screen_w <= 0 or screen_h <= 0 or diagonal_in <= 0:
        raise ValueError("screen size and diagonal must be positive")
    return diagonal_in * 2.54 / math.hypot(screen_w, screen_h)


def px_to_deg(px: float, *, cm_per_px: float, distance_cm: float) -> float:
    """Visual angle in degrees of ``px`` CSS pixels seen from ``distance_cm``: ``2 atan(s / 2D)``."""
    if distance_cm <= 0:
        raise ValueError("the viewing distance must be positive")
    return math.degrees(2.0 * math.atan(px * cm_per_px / (2.0 * distance_cm)))


# --------------------------------------------------------------------------- samples
def sampling_rate_hz(t_ms: Sequence[float] | np.ndarray, *, gap_s: float = 2.0) -> float | None:
    """Frames per second of one stream: intervals shorter than ``gap_s`` per second they span.

    Repeated time stamps count once (a frame logged twice is one frame). None with fewer than two
    frames closer than ``gap_s``.
    """
    t = np.unique(np.asarray(t_ms, dtype="float64"))
    t = t[np.isfinite(t)]
    d = np.diff(t)
    d = d[d < gap_s * 1000.0]
    if len(d) == 0 or d.sum() <= 0:
        return None
    return float(len(d) / (d.sum() / 1000.0))


def gap_share(t_ms: Sequence[float] | np.ndarray, *, gap_s: float = 2.0) -> float | None:
    """Share of the recording span (first to last frame) inside pauses of ``gap_s`` or more."""
    t = np.unique(np.asarray(t_ms, dtype="float64"))
    t = t[np.isfinite(t)]
    if len(t) < 2 or t[-1] <= t[0]:
        return None
    d = np.diff(t)
    return float(d[d >= gap_s * 1000.0].sum() / (t[-1] - t[0]))


def stream_stats(samples: pd.DataFrame, *, gap_s: float = 2.0) -> dict[str, Any]:
    """Sampling rates and data loss of one task's samples (``collection.release.schema`` frame).

    ``gaze_rate_hz``/``mouse_rate_hz`` are :func:`collection.sampling.achieved_rates`, the figure
    the site stores on the task and QC judges, so the report and the QC page never disagree about a
    task's rate (pauses lower it). ``gaze_rate_recording_hz`` is :func:`sampling_rate_hz`, the
    rate while frames were coming (pauses left out, their share is ``gap_share``): the two together
    tell a slow tracker from a tracker that stopped.

    Returns ``gaze_frames``, the rates, ``loss_share`` (frames without a
    face or a prediction; None when the data do not say, as in the release), ``no_face_share``
    (None likewise) and ``gap_share``.
    """
    # One row per logged frame: the abs rows (else box1), de-duplicated, as QC counts them.
    gaze = qc_instants(samples, "gaze")
    t = gaze["epoch_ms"].to_numpy(dtype="float64", na_value=np.nan)
    rates = achieved_rates(samples)
    out: dict[str, Any] = {
        "gaze_frames": len(gaze),
        "gaze_rate_hz": rates["gaze_rate_hz"],
        "mouse_rate_hz": rates["mouse_rate_hz"],
        "gaze_rate_recording_hz": sampling_rate_hz(t, gap_s=gap_s),
        "gap_share": gap_share(t, gap_s=gap_s),
        "loss_share": None,
        "no_face_share": None,
    }
    no_face = gaze["no_face"]
    if len(gaze) and no_face.notna().any():  # the site logs frames without a face; the release did not
        face_lost = no_face.fillna(False).to_numpy(dtype=bool)
        no_point = gaze["x"].isna().to_numpy() | gaze["y"].isna().to_numpy()
        out["no_face_share"] = float(face_lost.mean())
        out["loss_share"] = float((face_lost | no_point).mean())
    return out


# --------------------------------------------------------------------------- validation
def rms_s2s(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """RMS of the distance between consecutive samples (precision); None with < 2 samples."""
    x = np.asarray(xs, dtype="float64")
    y = np.asarray(ys, dtype="float64")
    if len(x) < 2:
        return None
    return float(np.sqrt(np.mean(np.diff(x) ** 2 + np.diff(y) ** 2)))


def target_label(x: float, y: float, width: float, height: float) -> str:
    """Where a target sits on the screen, by thirds: "centre", "top left", "bottom right", ..."""
    col = "left" if x < width / 3 else ("right" if x > 2 * width / 3 else "centre")
    row = "top" if y < height / 3 else ("bottom" if y > 2 * height / 3 else "middle")
    if (row, col) == ("middle", "centre"):
        return "centre"
    return f"{row} {col}"


def target_metrics(points: Iterable[Mapping[str, Any]], *, viewport_w: float, viewport_h: float) -> list[dict]:
    """Accuracy and precision (CSS px) of each validation target of one attempt.

    ``points`` are the browser's raw validation points ``{"x", "y", "centre", "samples":
    [{"x", "y", "t"}]}`` (``CalibrationAttempt.raw["points"]``); the samples are in time order.
    """
    out = []
    for p in points:
        s = sorted(p.get("samples") or [], key=lambda v: v.get("t", 0))
        xs = np.array([v["x"] for v in s], dtype="float64")
        ys = np.array([v["y"] for v in s], dtype="float64")
        tx, ty = float(p["x"]), float(p["y"])
        label = "centre" if p.get("centre") else target_label(tx, ty, viewport_w, viewport_h)
        out.append({
            "target": label,
            "n_samples": len(xs),
            "accuracy_px": float(np.mean(np.hypot(xs - tx, ys - ty))) if len(xs) else None,
            "precision_px": rms_s2s(xs, ys),
        })
    return out


def pick_attempt(attempts: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The attempt that admitted the task to the chat (the last passed one), else the last one.

    ``attempts`` in time order, each with ``passed``.
    """
    passed = [a for a in attempts if a.get("passed")]
    if passed:
        return passed[-1]
    return attempts[-1] if attempts else None


def in_degrees(rows: Iterable[Mapping[str, Any]], *, screen: tuple[float, float], params: ReportParams) -> list[dict]:
    """``target_metrics`` rows with ``accuracy_deg`` and ``precision_deg`` for a screen of
    ``screen`` CSS pixels under the report's assumed diagonal and viewing distance."""
    k = cm_per_css_px(screen[0], screen[1], diagonal_in=params.screen_diagonal_in)
    out = []
    for r in rows:
        deg = {
            f"{m}_deg": None if r.get(f"{m}_px") is None
            else px_to_deg(r[f"{m}_px"], cm_per_px=k, distance_cm=params.viewing_distance_cm)
            for m in ("accuracy", "precision")
        }
        out.append({**r, **deg})
    return out


# --------------------------------------------------------------------------- the report
@dataclass
class TaskInput:
    """What the report needs of one task (the Django side fills it from the database)."""

    task: int
    worker: str
    group: str  #: ``SITE`` or ``RELEASE``
    stream: dict[str, Any] = field(default_factory=dict)  #: :func:`stream_stats`
    targets: list[dict] = field(default_factory=list)  #: :func:`in_degrees` rows of the chosen attempt
    screen_source: str | None = None  #: "screen" (reported by the browser), "viewport" (fallback) or None
    centre_score: float | None = None
    environment: dict[str, Any] = field(default_factory=dict)  #: versions, camera, screen as recorded
    qc_codes: list[str] | None = None  #: QC flag codes; None: QC not computed
    excluded_by_staff: bool = False
    calibration_failed: bool = False


@dataclass
class Row:
    """One line of the report: a figure for each group (text, or numbers with n/median/range)."""

    section: str
    metric: str
    unit: str = ""
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)  #: group -> {value|n,median,min,max, note}


def _stat(values: Iterable[float | None]) -> dict[str, Any]:
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype="float64")
    if len(v) == 0:
        return {"n": 0}
    return {"n": len(v), "median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def _counted(values: Iterable[Any]) -> str | None:
    """"a (3 tasks), b (1 task)" of the non-empty values, commonest first."""
    counts = Counter(v for v in values if v not in (None, ""))
    if not counts:
        return None
    return ", ".join(f"{v} ({n} task{'s' if n != 1 else ''})" for v, n in counts.most_common())


TARGET_ORDER = ("centre", "top left", "top centre", "top right", "middle left", "middle right",
                "bottom left", "bottom centre", "bottom right")


def build_report(tasks: Sequence[TaskInput], *, params: ReportParams, installed: Mapping[str, str | None],
                 rules: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The report as data: parameters, groups and rows (rendered by :func:`to_markdown`,
    :func:`to_csv` and the staff page).

    Parameters
    ----------
    tasks : sequence of TaskInput
    params : ReportParams
    installed : mapping
        ``webgazer`` and ``face_mesh`` versions installed on the site now (read from the files),
        used for site tasks that did not record the versions they ran.
    rules : sequence of (code, label)
        The QC rules whose exclusions are counted, in order (``validation`` first).
    """
    groups = [g for g in (SITE, RELEASE) if any(t.group == g for t in tasks)]
    rows: list[Row] = []

    def add(section: str, metric: str, unit: str, cell: dict[str, Any] | Any) -> Row:
        row = Row(section, metric, unit)
        for g in groups:
            mine = [t for t in tasks if t.group == g]
            row.cells[g] = cell(g, mine) if callable(cell) else cell
        rows.append(row)
        return row

    def text(value: str | None, note: str | None = None) -> dict[str, Any]:
        return {"value": value} if value is not None else {"note": note or NOT_RECORDED}

    # Selection.
    add("Selection", "tasks", "", lambda g, m: {"value": len(m)})
    add("Selection", "workers", "", lambda g, m: {"value": len({t.worker for t in m})})

    # Tracker.
    def version(key: str) -> Any:
        def cell(g: str, m: list[TaskInput]) -> dict[str, Any]:
            if g == RELEASE:
                return {"note": NOT_IN_RELEASE}
            recorded = _counted(t.environment.get(key) for t in m)
            if recorded:
                return {"value": recorded}
            now = installed.get(key)
            return text(f"{now} (installed now; not recorded with the tasks)" if now else None)
        return cell

    add("Tracker", "WebGazer version", "", version("webgazer"))
    add("Tracker", "MediaPipe face_mesh version", "", version("face_mesh"))

    def env_text(fmt: Any) -> Any:
        def cell(g: str, m: list[TaskInput]) -> dict[str, Any]:
            if g == RELEASE:
                return {"note": NOT_IN_RELEASE}
            return text(_counted(fmt(t.environment) for t in m))
        return cell

    def camera(e: dict) -> str | None:
        if not e.get("camera_w"):
            return None
        fps = f" at {e['camera_fps']:.0f} frames/s" if e.get("camera_fps") else ""
        return f"{e['camera_w']}×{e['camera_h']}{fps}"

    add("Tracker", "camera resolution", "px", env_text(camera))
    add("Tracker", "screen (CSS px, device pixel ratio)", "",
        env_text(lambda e: f"{e['screen_w']}×{e['screen_h']} @{e.get('device_pixel_ratio') or 1:g}"
                 if e.get("screen_w") else None))

    # Sampling rate.
    for key, label in (("gaze_rate_hz", "gaze sampling rate"),
                       ("gaze_rate_recording_hz", "gaze sampling rate while recording (pauses left out)"),
                       ("mouse_rate_hz", "mouse sampling rate")):
        add("Sampling rate", label, "Hz", lambda g, m, key=key: _stat(t.stream.get(key) for t in m))

    # Accuracy and precision per validation target.
    def target_cell(label: str, key: str) -> Any:
        def cell(g: str, m: list[TaskInput]) -> dict[str, Any]:
            if g == RELEASE:
                return {"note": NOT_IN_RELEASE}
            if label == "all targets":  # per task: the mean over its targets
                vals = [np.mean([r[key] for r in t.targets if r.get(key) is not None])
                        if any(r.get(key) is not None for r in t.targets) else None for t in m]
            else:
                vals = [r.get(key) for t in m for r in t.targets if r["target"] == label]
            out = _stat(vals)
            if key.endswith("_deg"):
                fallback = sum(1 for t in m if t.targets and t.screen_source == "viewport")
                if fallback:
                    out["note"] = f"{fallback} task(s) without a recorded screen size: viewport used"
            if out["n"] == 0:
                out["note"] = "no validation recorded"
            return out
        return cell

    labels = sorted({r["target"] for t in tasks for r in t.targets}, key=lambda s: (
        TARGET_ORDER.index(s) if s in TARGET_ORDER else len(TARGET_ORDER), s))
    for what, section in (("accuracy", "Validation accuracy"), ("precision", "Precision (RMS-S2S)")):
        for label in [*labels, "all targets"]:
            add(section, f"{label}", "px", target_cell(label, f"{what}_px"))
            add(section, f"{label}", "°", target_cell(label, f"{what}_deg"))
        if what == "accuracy":
            add(section, "centre score (paper's formula, 0–100)", "", lambda g, m: _stat(t.centre_score for t in m))

    # Data loss.
    def loss(key: str) -> Any:
        def cell(g: str, m: list[TaskInput]) -> dict[str, Any]:
            if g == RELEASE:
                return {"note": f"{NOT_IN_RELEASE} (only frames with a prediction were logged)"}
            out = _stat(t.stream.get(key) for t in m)
            return out if out["n"] else {"note": NOT_RECORDED}
        return cell

    add("Data loss", "frames without a face or a prediction", "share", loss("loss_share"))
    add("Data loss", "frames without a face", "share", loss("no_face_share"))
    add("Data loss", f"recording time in pauses ≥ {params.gap_s:g} s", "share",
        lambda g, m: _stat(t.stream.get("gap_share") for t in m))

    # Exclusions.
    def excl(match: Any, *, needs_qc: bool = True) -> Any:
        def cell(g: str, m: list[TaskInput]) -> dict[str, Any]:
            measured = [t for t in m if t.qc_codes is not None] if needs_qc else m
            if not measured:
                return {"note": "QC not computed for these tasks"}
            hit = [t for t in measured if match(t)]
            out = {"value": f"{len(hit)} tasks, {len({t.worker for t in hit})} workers",
                   "tasks": len(hit), "workers": len({t.worker for t in hit})}
            if len(measured) < len(m):
                out["note"] = f"of the {len(measured)} tasks with QC"
            return out
        return cell

    add("Exclusions", "QC computed", "",
        lambda g, m: {"value": f"{sum(t.qc_codes is not None for t in m)} of {len(m)} tasks"})
    for code, label in rules:
        add("Exclusions", f"QC rule: {label}", "", excl(lambda t, code=code: code in (t.qc_codes or [])))
    add("Exclusions", "flagged by any QC rule", "", excl(lambda t: bool(t.qc_codes)))
    add("Exclusions", "excluded by a staff decision", "", excl(lambda t: t.excluded_by_staff, needs_qc=False))
    ended = add("Exclusions", "ended at calibration (every attempt failed)", "",
                excl(lambda t: t.calibration_failed, needs_qc=False))
    if RELEASE in ended.cells:
        ended.cells[RELEASE] = {"note": NOT_IN_RELEASE}

    return {"params": asdict(params), "groups": groups, "rows": rows}


# --------------------------------------------------------------------------- rendering
def _num(v: float, unit: str) -> str:
    if unit == "share":
        return f"{100 * v:.1f} %"
    return f"{v:.1f}" if abs(v) < 100 else f"{v:.0f}"


def cell_text(cell: Mapping[str, Any], unit: str) -> str:
    """A cell as one line: the value, or median (min–max; n), or the note."""
    if "value" in cell:
        return f"{cell['value']} ({cell['note']})" if cell.get("note") else str(cell["value"])
    if cell.get("n"):
        s = f"{_num(cell['median'], unit)} ({_num(cell['min'], unit)}–{_num(cell['max'], unit)}; n={cell['n']})"
        return f"{s} [{cell['note']}]" if cell.get("note") else s
    return cell.get("note", "–")


def params_text(params: Mapping[str, Any]) -> list[str]:
    return [
        f"Viewing distance assumed: {params['viewing_distance_cm']:g} cm.",
        f"Physical screen diagonal assumed: {params['screen_diagonal_in']:g} inches, applied to the screen size "
        "the browser reported (CSS px); degrees = 2·atan(s / 2D).",
        f"Pauses of {params['gap_s']:g} s or more are missing data, not sampling intervals.",
        "Numbers: median (min–max; n = tasks, or task × target for per-target rows).",
        "Accuracy: mean distance of the predictions to a validation target; precision: RMS of the "
        "sample-to-sample distance at a target; both from the attempt that admitted the task (else its last).",
    ]


def to_markdown(report: Mapping[str, Any], *, title: str = "Eye-tracking report") -> str:
    """The report as Markdown: the parameters, then one table per section."""
    groups = report["groups"]
    lines = [f"# {title}", "", *[f"- {p}" for p in params_text(report["params"])], ""]
    section = None
    for row in report["rows"]:
        if row.section != section:
            section = row.section
            head = " | ".join(GROUP_LABELS[g] for g in groups)
            lines += ["", f"## {section}", "", f"| Figure | Unit | {head} |", "|---|---|" + "---|" * len(groups)]
        cells = [cell_text(row.cells[g], row.unit).replace("|", "\\|") for g in groups]
        lines.append(f"| {row.metric} | {row.unit} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ("section", "metric", "unit", "group", "value", "n", "median", "min", "max", "note")


def to_csv(report: Mapping[str, Any]) -> str:
    """The report as CSV, one line per figure and group (numbers unformatted), parameters first."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for key, value in report["params"].items():
        w.writerow(["Parameters", key, "", "", value, "", "", "", "", ""])
    for row in report["rows"]:
        for g in report["groups"]:
            c = row.cells[g]
            value = c.get("value", "")
            w.writerow([row.section, row.metric, row.unit, g, value, c.get("n", ""), c.get("median", ""),
                        c.get("min", ""), c.get("max", ""), c.get("note", "")])
    return buf.getvalue()
