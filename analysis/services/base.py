"""Callback types shared by the analysis services (progress of a job, its log)."""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(percent, message)``: a job's ``ctx.progress`` (raises when the job was cancelled).
Progress = Callable[[float, str], None]


def no_progress(pct: float, message: str = "") -> None:
    return None


def no_log(line: str) -> None:
    return None
