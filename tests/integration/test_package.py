"""eventrouter as a package to depend on: the wheel ``make wheel`` makes (the hot path
compiled) installs into a fresh virtualenv with its data files (the dashboard page, Lambda's
prices) and serves a router of the user's own from a folder outside the clone, its hot
modules compiled; the demo never leaks there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import httpx
import msgspec
import pytest

from eventrouter.compiled import HOT
from tests.processes import RouterProcess
from tests.services import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

APP = """
from eventrouter import Http, Router

router = Router("mine")


@router.on_event(Http("GET /hello/{name}"))
async def hello(event) -> dict:
    return {"hello": event["pathParameters"]["name"]}
"""


def run(
    *args: str | Path, cwd: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | env,
    )  # fmt: skip
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel built from this clone installed: its python."""
    folder = tmp_path_factory.mktemp("package")
    # As `make wheel` builds it, in this environment (its hatchling, hatch-mypyc and mypy),
    # from a copy of the project: the build hook compiles in place and hides pyproject.toml
    # while it does, which other tests of this clone read.
    project = folder / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    skip = shutil.ignore_patterns("__pycache__", "*.so", ".compiled.json")
    shutil.copytree(ROOT / "eventrouter", project / "eventrouter", ignore=skip)
    built = run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                folder / "dist", project, cwd=folder, timeout=600,
                HATCH_BUILD_HOOK_ENABLE_MYPYC="true")  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (folder / "dist").glob("eventrouter-*.whl")
    assert "-none-any" not in wheel.name, wheel.name  # a platform wheel: compiled code
    names = zipfile.ZipFile(wheel).namelist()
    for module in HOT:
        stem = module.replace(".", "/")
        assert [n for n in names if n.startswith(stem + ".cpython-")], (module, names)
    assert ".compiled.json" not in str(names)  # a clone's manifest stays in the clone
    assert "eventrouter/observability/dashboard.html" in names
    assert "eventrouter/observability/prices.json" in names
    assert "eventrouter/py.typed" in names
    assert not [n for n in names if n.startswith(("handlers/", "tests/", "benchmarks/"))]
    venv.create(folder / "venv", with_pip=True)
    python = folder / "venv" / "bin" / "python"
    pip = run(python, "-m", "pip", "install", "--quiet", wheel, cwd=folder)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return python


def test_the_wheel_serves_a_router_a_dashboard_and_usage_outside_the_clone(
    installed: Path, tmp_path: Path
) -> None:
    (tmp_path / "mine.py").write_text(APP)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    router = RouterProcess(
        tmp_path / "state",
        tmp_path,
        "--http",
        f"127.0.0.1:{port}",
        target="mine:router",
        python=installed,
        cwd=tmp_path,
        env=env,
    )
    try:
        router.wait_for(lambda rs: any(r.get("event") == "router started" for r in rs), 60)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/hello/ann").json() == {"hello": "ann"}
        page = httpx.get(f"{base}/dashboard")
        assert page.status_code == 200 and "eventrouter dashboard" in page.text
    finally:
        assert router.stop() == 0
    usage = run(installed, "-m", "eventrouter", "usage", "--state-dir", tmp_path / "state",
                "--json", cwd=tmp_path)  # fmt: skip
    assert usage.returncode == 0, usage.stderr
    report = msgspec.json.decode(usage.stdout)
    assert report["functions"][0]["function"] == "hello"


def test_no_target_outside_a_project_says_what_to_pass(installed: Path, tmp_path: Path) -> None:
    done = run(installed, "-m", "eventrouter", "routes", cwd=tmp_path)
    assert done.returncode == 2
    assert "no target given and no handlers/ package" in done.stderr
    assert "python -m eventrouter run app:router" in done.stderr
    assert "shop" not in done.stdout
    where = run(installed, "-c", "import eventrouter; print(eventrouter.__file__)", cwd=tmp_path)
    assert where.stdout.startswith(str(installed.parent.parent)), where.stdout  # the wheel's
    check = "from eventrouter.compiled import running_compiled; print(running_compiled())"
    assert run(installed, "-c", check, cwd=tmp_path).stdout.strip() == "True"
