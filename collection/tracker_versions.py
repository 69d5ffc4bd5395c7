"""The WebGazer and MediaPipe face_mesh versions this site serves, read from their files.

Never hard-coded: WebGazer's comes from ``node_modules/webgazer/package.json`` (its bundle does
not carry one), face_mesh's from the ``package.json`` shipped next to the face_mesh files WebGazer
loads (``static/vendor/webgazer/mediapipe/face_mesh/``, found through the static files finders so
that a collected ``STATIC_ROOT`` works too). Read once per process: they change only with a new
install, which restarts the site.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders


def _version(path: str | Path | None) -> str | None:
    if not path:
        return None
    try:
        return str(json.loads(Path(path).read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@cache
def tracker_versions() -> dict[str, str | None]:
    """``{"webgazer": "3.5.3", "face_mesh": "0.4.1633559619"}`` (None where a file is missing)."""
    face_mesh = finders.find("vendor/webgazer/mediapipe/face_mesh/package.json")
    if not face_mesh and settings.STATIC_ROOT:
        face_mesh = Path(settings.STATIC_ROOT) / "vendor/webgazer/mediapipe/face_mesh/package.json"
    return {
        "webgazer": _version(Path(settings.BASE_DIR) / "node_modules" / "webgazer" / "package.json"),
        "face_mesh": _version(face_mesh),
    }
