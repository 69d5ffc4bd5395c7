"""Pure computation packages must not import Django, DRF, Celery or the apps' Django code.

Researchers import them from notebooks without a configured Django, and workers stay testable
with plain dataframes and tensors. Imports inside a pure package may only reach other pure
packages (and any third-party library that is not a web framework).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The one list of pure code: folders and single modules (relative to the repository root) that
#: must stay free of Django. A new computation module belongs here.
PURE = [
    "analysis/features",
    "analysis/reward",
    "analysis/plots",
    "analysis/leaderboard",
    "analysis/figures.py",
    "analysis/matching.py",
    "analysis/pipeline.py",
    "analysis/text_embed.py",
    "analysis/transfer.py",
    "alignment/training",
    "collection/release",
    "collection/gaze_quality.py",
    "collection/markdown_render.py",
    "collection/sampling.py",
    "collection/sentences.py",
    "crowd/anonymise.py",
    "crowd/eyetracking.py",
    "crowd/monitor.py",
    "crowd/mturk.py",
    "crowd/plots.py",
    "crowd/prolific.py",
    "crowd/prolific_api.py",
    "crowd/qc.py",
    "crowd/review_agreement.py",
    "crowd/scrub.py",
    "crowd/selection.py",
    "crowd/trajectory.py",
]
FORBIDDEN_LIBRARIES = {"django", "rest_framework", "drf_spectacular", "celery", "kombu"}
PROJECT_PACKAGES = {"ifllm_site", "jobs", "collection", "analysis", "alignment", "crowd"}
PURE_MODULES = {p.removesuffix(".py").replace("/", ".") for p in PURE}


def _is_pure(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in PURE_MODULES)


def _imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module) for each import; ``from a import b`` yields ``a.b``."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Forbidden imports in ``source``, the text of ``module``."""
    bad = []
    for line, name in _imported_modules(ast.parse(source), module, is_package):
        top = name.split(".")[0]
        if top in FORBIDDEN_LIBRARIES:
            bad.append(f"line {line}: {name}")
        elif top in PROJECT_PACKAGES and not _is_pure(name):
            # ``from analysis.features import x`` gives analysis.features.x: pure, allowed.
            # ``from analysis import models`` gives analysis.models: Django code, refused.
            bad.append(f"line {line}: {name} (not a pure package)")
    return bad


def _pure_files() -> list[Path]:
    files = []
    for entry in PURE:
        path = ROOT / entry
        assert path.exists(), f"{entry} is listed as pure but does not exist"
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return sorted(files)


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports_no_django(path: Path) -> None:
    relative = path.relative_to(ROOT).with_suffix("")
    is_package = relative.name == "__init__"
    module = ".".join(relative.parent.parts if is_package else relative.parts)
    assert violations(path.read_text(), module, is_package) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import django", ["line 1: django"]),
        ("from django.db import models", ["line 1: django.db.models"]),
        ("import celery.app", ["line 1: celery.app"]),
        ("from rest_framework import serializers", ["line 1: rest_framework.serializers"]),
        ("from analysis.models import Feature", ["line 1: analysis.models.Feature (not a pure package)"]),
        ("from analysis import models", ["line 1: analysis.models (not a pure package)"]),
        ("from .. import tasks", ["line 1: analysis.tasks (not a pure package)"]),
        ("from ..models import X", ["line 1: analysis.models.X (not a pure package)"]),
        ("def f():\n    import jobs.runner", ["line 2: jobs.runner (not a pure package)"]),
        ("from . import gaze\nfrom .gaze import fixations", []),
        ("from analysis.reward import model\nimport collection.release.reader", []),
        ("import pandas as pd\nimport numpy\nfrom torch import nn", []),
        ("from crowd.qc import RULES\nfrom analysis.matching import match_task", []),
        ("from crowd.models import Study", ["line 1: crowd.models.Study (not a pure package)"]),
        ("from crowd import services", ["line 1: crowd.services (not a pure package)"]),
    ],
)
def test_checker_flags_what_it_should(source: str, expected: list[str]) -> None:
    assert violations(source, "analysis.features.example") == expected


def test_relative_import_from_package_init() -> None:
    assert violations("from .reader import read", "collection.release", is_package=True) == []
    assert violations("from .. import models", "collection.release", is_package=True) == [
        "line 1: collection.models (not a pure package)"
    ]
