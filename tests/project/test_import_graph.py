"""The shape of ``azml/``: no runtime import cycle between its modules, no
folder grown past a dozen modules, and no module of the release controller
past ~400 lines.

The graph is read from the source (``ast``), not by importing: every
``import`` and ``from ... import`` at module level or inside a function counts
(a function-level import still runs, only later), except those under
``if TYPE_CHECKING:``, which never run. Relative imports are resolved against
the importing module's package; ``from pkg import name`` is an edge to
``pkg.name`` when that is a module of ``azml``, else to ``pkg``.
"""

from __future__ import annotations

import ast
from pathlib import Path


from ..conftest import ROOT

PACKAGE = ROOT / "azml"
MAX_MODULES_PER_FOLDER = 12
MAX_RELEASE_MODULE_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The ``azml`` modules ``name`` imports at run time."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    targets.add(alias.name)
            continue
        if node.level:
            base = package.split(".")
            if node.level > 1:
                base = base[: len(base) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        if not (stem == "azml" or stem.startswith("azml.")):
            continue
        for alias in node.names:
            sub = f"{stem}.{alias.name}"
            targets.add(sub if sub in known else stem)
    targets.discard(name)
    return {t for t in targets if t in known}


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path back to its start) per strongly connected component
    of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def strongconnect(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return [_a_cycle(graph, set(c), c[0]) for c in components]


def _a_cycle(graph: dict[str, set[str]], members: set[str], start: str) -> list[str]:
    # Breadth-first from start's successors back to start, inside the component.
    paths = {w: [start, w] for w in sorted(graph[start] & members)}
    frontier = list(paths)
    while start not in paths:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return paths[start]


def test_the_graph_reader_sees_runtime_imports_and_skips_type_only_ones(tmp_path: Path) -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from . import a\n"
        "if TYPE_CHECKING:\n    from . import b\n"
        "def f():\n    from .c import thing\n"
    )
    names = sorted(
        (n.module or "") + ":" + ",".join(a.name for a in n.names)
        for n in _runtime_imports(tree)
        if isinstance(n, ast.ImportFrom)
    )
    assert names == [":a", "c:thing", "typing:TYPE_CHECKING"]
    assert cycles({"x": {"y"}, "y": {"z"}, "z": {"x"}, "w": {"x"}}) == [["x", "y", "z", "x"]]
    assert cycles({"x": {"y"}, "y": set()}) == []


def test_no_runtime_import_cycle_inside_azml() -> None:
    found = cycles(import_graph())
    assert not found, "runtime import cycles in azml/:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_folder_of_azml_holds_more_than_a_dozen_modules() -> None:
    crowded = {}
    for folder in sorted({p.parent for p in PACKAGE.rglob("*.py")}):
        count = sum(1 for p in folder.glob("*.py") if p.name != "__init__.py")
        rel = folder.relative_to(ROOT).as_posix()
        if count > MAX_MODULES_PER_FOLDER:
            crowded[rel] = count
    assert not crowded, f"folders above {MAX_MODULES_PER_FOLDER} modules: {crowded}"


def test_no_release_module_is_longer_than_400_lines() -> None:
    long = {
        p.relative_to(ROOT).as_posix(): n
        for p in sorted((PACKAGE / "release").rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_RELEASE_MODULE_LINES
    }
    assert not long, f"release modules above {MAX_RELEASE_MODULE_LINES} lines: {long}"
