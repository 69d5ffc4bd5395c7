"""crowd's computation modules stay importable without Django (notebooks, workers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_pure_modules import FORBIDDEN_LIBRARIES, _imported_modules

ROOT = Path(__file__).resolve().parents[2]
PURE = ["crowd/qc.py", "crowd/trajectory.py", "crowd/anonymise.py", "crowd/prolific.py", "crowd/plots.py"]
#: Project modules a pure crowd module may import: other pure modules only.
ALLOWED_PROJECT = ("analysis.features.", "analysis.matching.", "crowd.qc.", "crowd.trajectory.", "crowd.anonymise.")


@pytest.mark.parametrize("path", PURE)
def test_no_django_in_pure_crowd_modules(path: str) -> None:
    import ast

    module = path.removesuffix(".py").replace("/", ".")
    bad = []
    for line, name in _imported_modules(ast.parse((ROOT / path).read_text()), module, False):
        top = name.split(".")[0]
        if top in FORBIDDEN_LIBRARIES:
            bad.append((line, name))
        elif top in {"crowd", "collection", "analysis", "alignment", "jobs", "ifllm_site"}:
            if not name.startswith(ALLOWED_PROJECT):
                bad.append((line, name))
    assert bad == []


def test_checker_catches_django_code_imports() -> None:
    import ast

    found = _imported_modules(ast.parse("from .models import Study\nimport django"), "crowd.qc", False)
    assert ("crowd.models.Study" in [n for _, n in found]) and ("django" in [n for _, n in found])
