"""The package layout holds: no import circles (lazy imports inside functions count too), no module
imports another module's private (underscore) names, and the arrows point one way only:
babylm -> eval_export -> bench, never back."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("babylm", "eval_export")


def _modules() -> dict[str, Path]:
    return {f"{pkg}.{path.stem}" if path.stem != "__init__" else pkg: path
            for pkg in PACKAGES for path in sorted((REPO / pkg).glob("*.py"))}


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import of the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                # `from babylm import checkpoint` imports a module, not a name
                out.append((child, None) if child in modules else (node.module, alias.name))
    return [(m, n) for m, n in out if m.split(".")[0] in PACKAGES + ("bench", "tests")]


def test_no_import_circles_and_no_private_names():
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = _imports(path, modules)
        private = [f"{m}.{n}" for m, n in deps if n and n.startswith("_") and n != "__version__"]
        assert not private, f"{name} imports private names {private}"
        outside = [m for m, _ in deps if m.split(".")[0] in ("bench", "tests")]
        assert not outside, f"{name} imports {outside}: the package never depends on benches or tests"
        if name.startswith("babylm"):
            upward = [m for m, _ in deps if m.startswith("eval_export")]
            assert not upward, f"{name} imports {upward}: babylm must not depend on eval_export"
        graph[name] = {m for m, _ in deps if m in modules and m != name and m not in PACKAGES}

    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert len(graph) > 30  # the walk really saw the package


def test_the_training_loop_stays_readable():
    """One job per module: the kit's loop stays short enough to read top to bottom."""
    assert len((REPO / "babylm" / "train.py").read_text(encoding="utf-8").splitlines()) < 450
