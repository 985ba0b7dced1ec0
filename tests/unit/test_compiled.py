"""The compiled hot path's guard: one list of modules, pure Python on request, and a source
changed since ``make compile`` never runs as its stale compiled copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from eventrouter import compiled

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import eventrouter, importlib.machinery as m, sys\n"
    "import eventrouter.http.native, eventrouter.runtime.invoker\n"
    "print(*(type(sys.modules[n].__loader__).__name__ for n in "
    "('eventrouter.http.native', 'eventrouter.runtime.invoker')))\n"
)


def probe(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV}
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", PROBE],
        cwd=cwd, capture_output=True, text=True, timeout=60, env={**environ, **env},
    )  # fmt: skip


def test_the_wheel_compiles_the_modules_the_clone_compiles() -> None:
    hook = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    include = hook["targets"]["wheel"]["hooks"]["mypyc"]["include"]
    assert include == ["/" + compiled.source(m).relative_to(ROOT).as_posix() for m in compiled.HOT]
    for module in compiled.HOT:
        assert compiled.source(module).is_file(), module


def test_pure_python_on_request() -> None:
    done = probe(ROOT, **{compiled.PURE_ENV: "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["SourceFileLoader", "SourceFileLoader"]


def test_a_compiled_clone_runs_compiled() -> None:
    if not compiled.MANIFEST.exists():
        pytest.skip("this clone is not compiled: `make compile` (make test does)")
    done = probe(ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ExtensionFileLoader", "ExtensionFileLoader"], done.stderr


def test_a_source_changed_since_compiled_runs_from_source_with_a_warning(tmp_path: Path) -> None:
    """A copy of the package, with its manifest (a fake one if this clone is not compiled):
    once a hot source changes, every hot module comes from its source, and a warning names
    the changed one and how to rebuild."""
    shutil.copytree(ROOT / "eventrouter", tmp_path / "eventrouter",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    manifest = tmp_path / "eventrouter" / compiled.MANIFEST.name
    if not manifest.exists():
        manifest.write_text(
            json.dumps({m: compiled.digest(compiled.source(m)) for m in compiled.HOT})
        )
    fresh = probe(tmp_path)
    assert fresh.returncode == 0 and "changed since it was compiled" not in fresh.stderr
    native = tmp_path / "eventrouter" / "http" / "native.py"
    native.write_text(native.read_text() + "\n# an edit\n")
    stale = probe(tmp_path)
    assert stale.returncode == 0, stale.stderr
    assert stale.stdout.split() == ["SourceFileLoader", "SourceFileLoader"]
    assert "eventrouter.http.native changed since it was compiled" in stale.stderr
    assert "make compile" in stale.stderr
