"""Every Python snippet of the README is a complete program, and runs as written (each in a
fresh folder, as a new user would paste it into a file), so the README cannot drift."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [
    (README.read_text()[: m.start()].count("\n") + 1, m.group(1))
    for m in re.finditer(r"```python\n(.*?)```", README.read_text(), flags=re.S)
]


def test_the_readme_has_snippets() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_snippet_runs(line: int, code: str, tmp_path: Path) -> None:
    program = tmp_path / "snippet.py"
    program.write_text(code)
    done = subprocess.run(
        [sys.executable, str(program)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"README.md:{line}\n{done.stdout}\n{done.stderr}"
    # Nothing is written into the project the snippet belongs to: only its own folder.
    assert not (Path.cwd() / "roles" / "charge.json").exists()
