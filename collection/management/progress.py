"""The progress bar of the commands that walk tasks (release import/export, dataset export)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def task_progress_bar(desc: str = "trajectories") -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback for the services, drawn on stderr (off when not a
    terminal); the bar is closed however the command ends."""
    bar = tqdm(total=0, unit="task", desc=desc, file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        bar.close()
