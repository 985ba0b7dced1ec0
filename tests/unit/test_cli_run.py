"""``run`` as a newcomer meets it: HTTP by default, the URLs at start, options from the
environment, a busy port that says what to do, ``--version`` and help for every option."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import msgspec

from eventrouter import __version__
from eventrouter.cli import DEFAULT_HTTP, _http_address, _parser, _subparsers, env_name
from tests.processes import RouterProcess
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventrouter", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_run_serves_http_on_the_default_address_unless_told_otherwise() -> None:
    parser = _subparsers(_parser())["run"]
    assert _http_address(parser.parse_args([])) == DEFAULT_HTTP == "127.0.0.1:8000"
    assert _http_address(parser.parse_args(["--no-http"])) is None
    assert _http_address(parser.parse_args(["--http", "0.0.0.0:9"])) == "0.0.0.0:9"


def test_the_http_address_from_the_environment_and_the_urls_at_start(tmp_path: Path) -> None:
    port = free_port()
    router = RouterProcess(
        tmp_path / "state", tmp_path, env={"EVENTROUTER_HTTP": f"127.0.0.1:{port}"}
    )
    try:
        router.wait_for(lambda rs: any(r["event"] == "router started" for r in rs))
        (line,) = [r for r in router.records if r["event"] == "http listening"]
        url = f"http://127.0.0.1:{port}"
        assert line["url"] == url and line["dashboard"] == f"{url}/dashboard"
        assert line["metrics"] == f"{url}/metrics"
        assert line["invoke_api"] == f"{url}/2015-03-31/functions/<name>/invocations"
        assert httpx.get(f"{url}/readyz").status_code == 200
    finally:
        assert router.stop(signal.SIGTERM) == 0


def test_a_busy_port_says_how_to_pick_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli(
            "run", "tests.apps.durable:router", "--state-dir", str(tmp_path),
            env={"EVENTROUTER_HTTP": f"127.0.0.1:{port}"},
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "--http HOST:PORT or EVENTROUTER_HTTP" in done.stderr
    assert "Traceback" not in done.stderr


def test_options_from_the_environment_are_checked_and_the_command_line_wins() -> None:
    bad = _cli("run", env={"EVENTROUTER_LOG_FORMAT": "xml"})
    assert bad.returncode == 2
    assert "EVENTROUTER_LOG_FORMAT='xml' is not one of auto, console, json" in bad.stderr
    flag = _cli("run", env={"EVENTROUTER_NO_HTTP": "maybe"})
    assert flag.returncode == 2 and "EVENTROUTER_NO_HTTP='maybe'" in flag.stderr
    os.environ["EVENTROUTER_STATE_DIR"] = "/from/env"
    try:
        parser = _subparsers(_parser())["run"]
        assert parser.parse_args([]).state_dir == "/from/env"
        assert parser.parse_args(["--state-dir", "cli"]).state_dir == "cli"
    finally:
        del os.environ["EVENTROUTER_STATE_DIR"]


def test_version_and_help_for_every_option() -> None:
    version = _cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"eventrouter {__version__}"
    for name, command in _subparsers(_parser()).items():
        for action in command._actions:
            if action.option_strings and action.help != argparse.SUPPRESS:
                assert action.help, f"{name} {action.option_strings[0]} has no help"
                assert env_name(action.option_strings[-1]).startswith("EVENTROUTER_")
    assert "EVENTROUTER_STATE_DIR" in _cli("--help").stdout


def test_make_run_takes_a_port() -> None:
    done = subprocess.run(
        ["make", "-n", "run", "PORT=8080"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "run --http 127.0.0.1:8080" in done.stdout, done.stdout


SERVED_ELSEWHERE = """
import anyio
from eventrouter import Router
from eventrouter.testing import run_router

router = Router("library")

@router.on_event(None)
async def noop(event): return 1

async def main():
    async with run_router(router) as app:
        await app.invoke("noop", {})

anyio.run(main)
"""


def test_a_router_run_as_a_library_logs_to_stderr_in_the_runs_format(tmp_path: Path) -> None:
    """No console-formatted line on standard output: structlog unconfigured by the program
    (a router under uvicorn, ``run_router`` in a script) logs as ``run`` would."""
    done = subprocess.run(
        [sys.executable, "-c", SERVED_ELSEWHERE],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    events = [msgspec.json.decode(line)["event"] for line in done.stderr.splitlines()]
    assert "permissions are not enforced" in events[0] and "REPORT" in events
