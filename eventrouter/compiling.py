"""``python -m eventrouter.compiling`` (``make compile``): compile the hot path (:data:`HOT`)
in place with mypyc, unless every module already is, from its current source.

Needs mypy (its mypyc) and setuptools: the test and bench extras. Not imported by the package
(``eventrouter.compiled`` holds what a run needs: the list and the guard).
"""

from __future__ import annotations

import json
import os

from eventrouter.compiled import HOT, MANIFEST, PACKAGE, digest, source, stale


def _fresh() -> bool:
    """Whether every hot module's extension is in place and built from its current source."""
    if not MANIFEST.exists() or stale():
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
