"""The package's structure (``docs/architecture.md``'s map): layers without a circle, type
annotations counted; every module importable alone; nothing outside a source's package reading
a source's members the ``Source`` protocol does not declare; no engine, policy or HTTP app
naming a kind of source (a new source is its package)."""

from __future__ import annotations

import ast
import re
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


def _imports(tree: ast.AST, package: str, annotations: bool = True) -> Iterator[str]:
    """Names of eventrouter modules imported: module level and inside functions, and (with
    ``annotations``) under ``if TYPE_CHECKING:`` too — a type named is a dependency."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            if annotations:
                for inner in node.body:
                    yield from _imports(ast.Module(body=[inner], type_ignores=[]), package)
            for other in node.orelse:
                yield from _imports(other, package, annotations)
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
            yield from _imports(node, package, annotations)


def import_graph(annotations: bool = True) -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for imported in _imports(ast.parse(path.read_text()), package, annotations):
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
    assert "eventrouter.x" in set(_imports(ast.parse(source), "eventrouter"))
    assert "eventrouter.x" not in set(_imports(ast.parse(source), "eventrouter", False))


def test_no_import_cycle_annotations_counted() -> None:
    """No circle, counting the imports made for type annotations only (``TYPE_CHECKING``):
    a module naming a type of another depends on it as much as one calling it."""
    graph = import_graph()
    assert len(graph) > 100
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


#: The layers, lowest first: a module imports (annotations counted) its own layer or lower.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "words and pure rules",
        (
            "eventrouter._optional",
            "eventrouter.lazy",
            "eventrouter.keywords",
            "eventrouter.errors",
            "eventrouter.arns",
            "eventrouter.events",
            "eventrouter.config",
            "eventrouter.filters",
            "eventrouter.signature",
            "eventrouter.outcomes",
            "eventrouter.backoff",
            "eventrouter.lineage",
            "eventrouter.mapping_fields",
            "eventrouter.streaming",
            "eventrouter.response",
            "eventrouter.snapstart",
        ),
    ),
    (
        "services",
        (
            "eventrouter.services",
            "eventrouter.store",
            "eventrouter.observability",
            "eventrouter.security",
            "eventrouter.lease_table",
        ),
    ),
    ("the contract", ("eventrouter.contract",)),
    (
        "adapters, and the services that read functions",
        (
            "eventrouter.observability.usage",
            "eventrouter.security.guard",
            "eventrouter.store.sqs",
            "eventrouter.sources",
            "eventrouter.destinations",
            "eventrouter.bus",
            "eventrouter.fakes",
        ),
    ),
    ("registry", ("eventrouter.registry",)),
    ("execution", ("eventrouter.context", "eventrouter.runtime")),
    (
        "engine and control plane",
        (
            "eventrouter.control",
            "eventrouter.runtime.engine",
            "eventrouter.runtime.interface",
            "eventrouter.runtime.readings",
            "eventrouter.runtime.history",
        ),
    ),
    (
        "faces",
        (
            "eventrouter.http",
            "eventrouter.router",
            "eventrouter.loader",
            "eventrouter.observability.dashboard",
            "eventrouter.observability.exposition",
            "eventrouter.cli",
            "eventrouter.testing",
            "eventrouter.supervisor",
            "eventrouter.__main__",
            "eventrouter",
        ),
    ),
]


def layer_of(module: str) -> int:
    """The layer of ``module``: the one naming its longest prefix."""
    best, found = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    assert found >= 0, f"{module} is in no layer: add it to LAYERS"
    return found


#: The imports that go up, each with its reason (to be removed, not added to).
UPWARD = {
    # The engine serves its routes when asked (``http=``): it starts the HTTP face, imported
    # on first use; a server handed in by the caller would remove the edge.
    ("eventrouter.runtime.engine", "eventrouter.http.server"),
}


def test_imports_go_down_the_layers() -> None:
    graph = import_graph()
    upward = sorted(
        f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
        for a, targets in graph.items()
        for b in targets
        if layer_of(b) > layer_of(a) and (a, b) not in UPWARD
    )
    assert upward == []


#: Where a source's members may be read reflectively: its own package, and the contract
#: that declares them (``source_label`` reads a settings Struct's first field).
_REFLECTS_ON_SOURCES = ("eventrouter.sources.", "eventrouter.contract.")


def reflective_source_reads(tree: ast.AST) -> list[str]:
    """``getattr(x.source, ...)`` / ``hasattr(source, ...)`` calls: reading a member of a
    source that its protocol may not declare."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and node.args
            and re.search(r"(^|[._])source$", ast.unparse(node.args[0]))
        ):
            found.append(ast.unparse(node))
    return found


def test_the_reflection_checker_sees_a_read() -> None:
    tree = ast.parse(
        "getattr(spec.source, 'trigger', '')\nhasattr(code_source, 'x')\ngetattr(f, 'y')"
    )
    assert reflective_source_reads(tree) == [
        "getattr(spec.source, 'trigger', '')",
        "hasattr(code_source, 'x')",
    ]


def test_no_reflective_read_of_a_source_outside_its_package() -> None:
    """Every member read of a source is on the ``Source`` protocol: no ``getattr`` /
    ``hasattr`` of a source outside ``eventrouter/sources/``."""
    found = {
        name: reads
        for name, path in modules().items()
        if not name.startswith(_REFLECTS_ON_SOURCES)
        and (reads := reflective_source_reads(ast.parse(path.read_text())))
    }
    assert found == {}


def test_engine_policies_and_http_name_no_source() -> None:
    """The engine, the policies, the control plane and the HTTP app reach sources through
    their protocol only: none imports a source's package (a new source touches none)."""
    graph = import_graph()
    for module in graph:
        if module.startswith(
            (
                "eventrouter.runtime.",
                "eventrouter.control.",
                "eventrouter.http.",
                "eventrouter.security.",
            )
        ):
            named = {m for m in graph[module] if m.startswith("eventrouter.sources.")}
            assert named == set(), (module, named)


def test_one_owner_of_the_state_database() -> None:
    """Every table of the state dir's database is created by ``store/schema.py``, and rows
    reach ``events`` through it only (``usage.sqlite`` is a database of its own)."""
    owners = {"eventrouter.store.schema", "eventrouter.observability.usage"}
    found = {
        name
        for name, path in modules().items()
        if name not in owners
        and re.search(r"CREATE TABLE|INSERT(?: OR \w+)? INTO events\b", path.read_text())
    }
    assert found == set()


def test_policies_read_records_through_their_adapter() -> None:
    """The policies know no transport's record shape: an SQS message's keys, a Kafka
    record's fields are their adapter's (``contract/adapters.py: RecordShapes``)."""
    shapes = re.compile(r"""["'](Body|MessageId|ReceiptHandle|Attributes|MessageAttributes)["']""")
    found = {
        name: shapes.findall(path.read_text())
        for name, path in modules().items()
        if name.startswith("eventrouter.runtime.policies.") and shapes.search(path.read_text())
    }
    assert found == {}
