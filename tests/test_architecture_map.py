"""docs/architecture.md names files and functions; every one of them must exist.

A map that names a renamed function sends a newcomer to the wrong stop, so this test reads every
backticked path (``collection/api.py``, ``analysis/reward/``) and every backticked identifier
that follows a path in the same sentence-step, and checks the path exists and the identifier is
defined in that file (a ``def``, ``class`` or assignment in Python; the word in other files).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "docs" / "architecture.md"
PATH = re.compile(r"^[\w./<>-]+/[\w.<>-]*$|^[\w-]+\.(py|mjs|md|html)$")
IDENT = re.compile(r"^[A-Za-z_]\w*$")
#: Backticked words that are values or columns, not code objects.
NOT_CODE = {"abs", "box1", "box2", "row", "received_ms", "gpu", "cpu", "final", "pair_id", "emb", "text", "access",
            "jobs", "crowd", "analysis", "alignment", "collection", "precompute_reference", "from_pretrained",
            "queries"}


def _resolve(name: str, context: list[Path]) -> Path | None:
    """A path as the map writes it: from the repository root, or relative to a folder named
    before it (the app of a table row, the folder of the previous file)."""
    if "<" in name or name.startswith("var/") or name == "final/":  # runtime folders
        return None
    for base in [ROOT, *[c if c.is_dir() else c.parent for c in reversed(context)],
                 *[c.parent.parent for c in reversed(context)]]:
        if (base / name).exists():
            return base / name
    return ROOT / name  # reported as missing


@cache
def _python_names(path: Path) -> frozenset[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            names.update(t.attr for t in node.targets if isinstance(t, ast.Attribute))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return frozenset(names)


def _defined(ident: str, path: Path) -> bool:
    if path.is_dir():  # a module of the folder, or defined in one
        return (path / f"{ident}.py").exists() or any(_defined(ident, p) for p in path.glob("*.py"))
    if path.suffix == ".py":
        return ident in _python_names(path)
    return re.search(rf"\b{re.escape(ident)}\b", path.read_text(encoding="utf-8")) is not None


def check(text: str) -> list[str]:
    """Problems of one map: missing paths, and identifiers not defined in the files of their step."""
    problems: list[str] = []
    context: list[Path] = []  # every path so far, for relative names
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # diagrams
    for block in re.split(r"\n(?=\d+\. |\| |- )|\n\n", text):
        tokens = [t.strip() for t in re.findall(r"`([^`]+)`", block)]
        files: list[Path] = []
        for token in tokens:
            if (ROOT / token).is_dir() and "/" not in token:  # an app named in a table row
                context.append(ROOT / token)
                files.append(ROOT / token)
            elif PATH.match(token):
                path = _resolve(token, context)
                if path is None:
                    continue
                if path.exists():
                    files.append(path)
                    context.append(path)
                else:
                    problems.append(f"{token}: no such file or folder")
        where = files or context[-1:]
        for token in tokens:
            if PATH.match(token) or not where:
                continue
            parts = token.split(".")
            if not all(IDENT.match(p) for p in parts) or parts[-1] in NOT_CODE:
                continue
            owner_files = [f for f in ROOT.rglob(f"{parts[-2]}.py") if ".venv" not in f.parts] if len(parts) > 1 else []
            models = ROOT / parts[0] / "models.py"
            if len(parts) == 2 and models.exists() and f'"{parts[1]}"' in models.read_text(encoding="utf-8"):
                continue  # a permission "app.codename" declared in the app's Meta
            if not any(_defined(parts[-1], f) for f in [*where, *owner_files]):
                problems.append(f"{token}: not defined in {[str(f.relative_to(ROOT)) for f in where]}")
    return problems


def test_every_file_and_function_the_map_names_exists() -> None:
    problems = check(MAP.read_text(encoding="utf-8"))
    assert not problems, "docs/architecture.md is out of date:\n" + "\n".join(problems)


def test_the_check_catches_a_renamed_function_and_a_missing_file() -> None:
    problems = check("1. `collection/services/trajectory.py` `trajectory_batch_ingest_fast` stores it;\n"
                     "2. `analysis/nowhere.py` does the rest; `analysis/pipeline.py` `run_reward_table` too.")
    assert any("trajectory_batch_ingest_fast" in p for p in problems)
    assert any("analysis/nowhere.py" in p for p in problems)
    assert not any("run_reward_table" in p for p in problems)
