"""The compiled hot path: which modules mypyc compiles, whether they run compiled, and the
guard that keeps a changed source from running as its stale compiled copy.

The modules of :data:`HOT` are plain, ``mypy --strict`` Python; mypyc compiles each to a C
extension beside its source (``native.cpython-311-x86_64-linux-gnu.so`` beside ``native.py``),
which Python imports in preference to the source. A wheel built with ``make wheel`` (the
``hatch-mypyc`` build hook, the list in ``pyproject.toml``) ships them; in a clone,
``make compile`` (``python -m eventrouter.compiling``, the test and bench extras) builds them
in place and writes :data:`MANIFEST`, the hash of each source it compiled.

When a source of a clone no longer matches the manifest (edited since), or when
``EVENTROUTER_PURE_PYTHON=1``, every module of :data:`HOT` is imported from its source: all
or none, as compiled modules call each other's native code directly.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

#: The modules on the hot paths that mypyc compiles (the same list as ``pyproject.toml``'s
#: ``tool.hatch.build.targets.wheel.hooks.mypyc.include``; a test checks they agree). Not the
#: classes users hold (the context, ``HttpRequest``): a compiled class takes no attributes
#: it does not declare, cannot be subclassed in Python, and loses its docstring.
HOT = (
    "eventrouter.http.native",
    "eventrouter.http.wire",
    "eventrouter.runtime.invoker",
    "eventrouter.runtime.delivery",
    "eventrouter.runtime.policies.batch",
    "eventrouter.runtime.policies.stream_batch",
    "eventrouter.services.deadlines",
    "eventrouter.services.concurrency",
    "eventrouter.outcomes",
)
PACKAGE = Path(__file__).resolve().parent
#: Written by ``make compile`` in a clone: each compiled module's source hash.
MANIFEST = PACKAGE / ".compiled.json"
PURE_ENV = "EVENTROUTER_PURE_PYTHON"


def source(module: str) -> Path:
    return PACKAGE.parent.joinpath(*module.split(".")).with_suffix(".py")


def digest(path: Path) -> str:
    import hashlib  # a clone's guard only

    return hashlib.sha256(path.read_bytes()).hexdigest()


def running_compiled() -> bool:
    """Whether the modules of :data:`HOT` are imported as compiled extensions."""
    for module in HOT:
        spec = importlib.util.find_spec(module)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            return False
    return True


class _FromSource(importlib.abc.MetaPathFinder):
    """Imports the modules of :data:`HOT` from their ``.py`` sources."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in HOT:
            return None
        return importlib.util.spec_from_file_location(fullname, source(fullname))


def stale() -> list[str]:
    """The hot modules of a clone whose source changed since ``make compile``."""
    try:
        compiled = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return []  # no manifest: an installed wheel, or a clone never compiled
    stale = []
    for module, sha in compiled.items():
        try:
            if digest(source(module)) != sha:
                stale.append(module)
        except OSError:
            stale.append(module)
    return stale


def guard() -> None:
    """Run the hot modules from their sources when asked to, or when a compiled copy is stale
    (with a warning naming the changed sources and how to rebuild)."""
    if any(isinstance(finder, _FromSource) for finder in sys.meta_path):
        return
    pure = os.environ.get(PURE_ENV, "") not in ("", "0")
    stale_modules = [] if pure else stale()
    if stale_modules:
        warnings.warn(
            f"eventrouter: {', '.join(stale_modules)} changed since it was compiled: running every "
            "compiled module from its source (`make compile` rebuilds them)",
            stacklevel=2,
        )
    if pure or stale_modules:
        sys.meta_path.insert(0, _FromSource())
