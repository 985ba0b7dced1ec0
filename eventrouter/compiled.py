"""The compiled hot path: which modules mypyc compiles, whether they run compiled, and the
guard that keeps a changed source from running as its stale compiled copy.

The modules of :data:`HOT` are plain, ``mypy --strict`` Python; mypyc compiles each to a C
extension beside its source (``native.cpython-311-x86_64-linux-gnu.so`` beside ``native.py``),
which Python imports in preference to the source. A wheel built with ``make wheel`` (the
``hatch-mypyc`` build hook, the list in ``pyproject.toml``) ships them; in a clone,
``make compile`` (``python -m eventrouter.compiled``, the test and bench extras) builds them in
place and writes :data:`MANIFEST`, the hash of each source it compiled.

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


def _stale() -> list[str]:
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
    stale = [] if pure else _stale()
    if stale:
        warnings.warn(
            f"eventrouter: {', '.join(stale)} changed since it was compiled: running every "
            "compiled module from its source (`make compile` rebuilds them)",
            stacklevel=2,
        )
    if pure or stale:
        sys.meta_path.insert(0, _FromSource())


def _fresh() -> bool:
    """Whether every hot module's extension is in place and built from its current source."""
    if not MANIFEST.exists() or _stale():
        return False
    return all(
        any(source(module).parent.glob(source(module).stem + ".cpython-*")) for module in HOT
    )


def build(jobs: int = 2) -> bool:
    """Compile :data:`HOT` in place with mypyc (the test and bench extras' mypy) and write the
    manifest, unless every module is compiled from its current source: whether it built."""
    if _fresh():
        return False
    import tempfile

    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]

    paths = [str(source(module).relative_to(PACKAGE.parent)) for module in HOT]
    MANIFEST.unlink(missing_ok=True)
    for built in PACKAGE.rglob("*.so"):  # a module no longer in HOT must not shadow its source
        built.unlink()
    with tempfile.TemporaryDirectory() as temp:
        os.chdir(PACKAGE.parent)
        extensions = mypycify(paths, separate=True, opt_level="3", target_dir=temp)
        dist = Distribution({"name": "eventrouter-hot", "ext_modules": extensions})
        command = dist.get_command_obj("build_ext")
        command.inplace = True
        command.build_temp = command.build_lib = temp
        command.parallel = jobs
        dist.run_command("build_ext")
    MANIFEST.write_text(
        json.dumps({module: digest(source(module)) for module in HOT}, indent=1) + "\n"
    )
    return True


if __name__ == "__main__":
    built = build()
    print(f"{len(HOT)} hot modules {'compiled' if built else 'already compiled'} in place")
