"""The apps depend one way: collection <- analysis <- alignment, crowd beside them (nothing imports
crowd), jobs and access at the bottom (they import no lab app). Permission strings count too: an
app may only check permissions of apps it may import.

Beside ``tests/test_pure_modules.py`` (no Django in the pure modules), this holds the map of
``docs/architecture.md`` to the code: a new import across the line fails here, not in review.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: app -> the lab apps it may import (itself always).
ALLOWED: dict[str, set[str]] = {
    "access": set(),
    "jobs": {"access"},
    "collection": {"jobs", "access"},
    "analysis": {"collection", "jobs", "access"},
    "alignment": {"analysis", "collection", "jobs", "access"},
    "crowd": {"collection", "analysis", "alignment", "jobs", "access"},
}
APPS = set(ALLOWED)
#: ``"app.codename"`` literals that name a permission (job kinds like "crowd.export_dataset"
#: are names of tasks, and Celery task names are not checked here).
PERMISSION = re.compile(rf"^({'|'.join(APPS)})\.(add|change|delete|view|pay|review|export|cancel|rerun)_[a-z_]+$")


def _modules(app: str) -> list[Path]:
    return [p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]


def _references(path: Path) -> list[tuple[int, str, str]]:
    """(line, app, what) for every import of a lab app and every permission string."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in APPS:
                found.append((node.lineno, top, f"import {name}"))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = PERMISSION.match(node.value)
            if m and not _is_job_kind(tree, node):
                found.append((node.lineno, m.group(1), f'permission "{node.value}"'))
    return found


def _is_job_kind(tree: ast.AST, const: ast.Constant) -> bool:
    """The first argument of ``@job_task(...)`` or a ``kind=`` keyword is a job kind, not a permission."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if fn == "job_task" and node.args and node.args[0] is const:
                return True
            if any(k.arg == "kind" and k.value is const for k in node.keywords):
                return True
    return False


@pytest.mark.parametrize("app", sorted(APPS))
def test_app_imports_only_the_apps_below_it(app: str) -> None:
    wrong = [f"{p.relative_to(ROOT)}:{line}: {what}"
             for p in _modules(app) for line, other, what in _references(p)
             if other != app and other not in ALLOWED[app]]
    assert not wrong, f"{app} may use only {sorted(ALLOWED[app])}:\n" + "\n".join(wrong)


def test_the_check_finds_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text('from crowd.privacy import x\nperm = "crowd.view_payment"\n'
                   '@job_task("crowd.export_dataset")\ndef f(): ...\n')
    refs = _references(bad)
    assert (1, "crowd", "import crowd.privacy") in refs
    assert (2, "crowd", 'permission "crowd.view_payment"') in refs
    assert all(line != 3 for line, _, _ in refs)  # a job kind is no permission
    assert "crowd" not in ALLOWED["analysis"] and "crowd" not in ALLOWED["collection"]
