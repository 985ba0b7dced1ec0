"""The package's structure: no import cycle at run time, every module importable alone, and
no policy or engine module naming a source class (a new pull source is one adapter)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "eventrouter"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST, package: str) -> Iterator[str]:
    """Names of eventrouter modules imported when the code runs: module level and inside
    functions, not under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for other in node.orelse:
                yield from _imports(other, package)
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)
        else:
            yield from _imports(node, package)


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for imported in _imports(ast.parse(path.read_text()), package):
            if imported in known and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
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
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_graph_checker_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import eventrouter.x\n"
    source += "def f():\n    from eventrouter import y\n"
    assert set(_imports(ast.parse(source), "eventrouter")) >= {"eventrouter", "eventrouter.y"}
    assert "eventrouter.x" not in set(_imports(ast.parse(source), "eventrouter"))


def test_no_import_cycle_at_run_time() -> None:
    graph = import_graph()
    assert len(graph) > 50
    assert cycles(graph) == []


def test_every_module_imports_alone() -> None:
    names = sorted(n for n in modules() if n != "eventrouter.__main__")
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'eventrouter']:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_policies_and_engine_name_no_source() -> None:
    """The rules of each model and the engine reach sources through their protocol only."""
    graph = import_graph()
    for module in (
        "eventrouter.runtime.engine",
        "eventrouter.runtime.policies.stream",
        "eventrouter.runtime.policies.queue_poll",
        "eventrouter.runtime.policies.asynchronous",
        "eventrouter.runtime.invoker",
        "eventrouter.security.guard",
    ):
        named = {m for m in graph[module] if m.startswith("eventrouter.sources.")}
        assert named <= {"eventrouter.contract.spec"}, (module, named)
