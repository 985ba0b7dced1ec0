"""The CLI, run as users run it: ``python -m eventrouter ...`` in a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import msgspec

from eventrouter.cli import routes_table
from eventrouter.loader import load_router

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path = ROOT, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventrouter", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_invoke_prints_result(tmp_path: Path) -> None:
    done = cli(
        "invoke",
        "echo",
        "tests.apps.durable:router",
        "--payload",
        '{"a": [1, 2]}',
        "--state-dir",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert msgspec.json.decode(done.stdout) == {"a": [1, 2]}
    report = [line for line in done.stderr.splitlines() if '"REPORT"' in line]
    assert len(report) == 1 and '"function":"echo"' in report[0]


def test_invoke_function_error_exits_1_with_error_json(tmp_path: Path) -> None:
    done = cli("invoke", "fails", "tests.apps.durable:router", "--state-dir", str(tmp_path))
    assert done.returncode == 1
    body = msgspec.json.decode(done.stdout)
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "nope"


def test_invoke_bad_input_exits_2(tmp_path: Path) -> None:
    unknown = cli("invoke", "nope", "tests.apps.durable:router", "--state-dir", str(tmp_path))
    assert unknown.returncode == 2 and "has no function 'nope'" in unknown.stderr
    assert "its functions: echo, fails" in unknown.stderr
    typo = cli("invoke", "ehco", "tests.apps.durable:router", "--state-dir", str(tmp_path))
    assert typo.returncode == 2 and "did you mean 'echo'?" in typo.stderr
    bad_json = cli(
        "invoke",
        "echo",
        "tests.apps.durable:router",
        "--payload",
        "{oops",
        "--state-dir",
        str(tmp_path),
    )
    assert bad_json.returncode == 2 and "json" in bad_json.stderr.lower()
    bad_target = cli("invoke", "echo", "no_such_module:router")
    assert bad_target.returncode == 2 and "cannot import" in bad_target.stderr


def test_invoke_payload_from_stdin(tmp_path: Path) -> None:
    done = cli(
        "invoke",
        "echo",
        "tests.apps.durable:router",
        "--payload",
        "-",
        "--state-dir",
        str(tmp_path),
        stdin='"from stdin"',
    )
    assert done.returncode == 0 and done.stdout.strip() == '"from stdin"'


def test_invoke_async_enqueues(tmp_path: Path) -> None:
    done = cli(
        "invoke",
        "echo",
        "tests.apps.durable:router",
        "--async",
        "--payload",
        "[1]",
        "--state-dir",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    request_id = done.stdout.strip()
    assert len(request_id) == 36
    import sqlite3

    with sqlite3.connect(tmp_path / "queue.db") as db:
        rows = db.execute("SELECT queue, request_id, payload FROM events").fetchall()
    assert rows == [("fn:echo", request_id, b"[1]")]


def test_routes_lists_functions() -> None:
    done = cli("routes", "tests.apps.durable:router")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "router 'durable'"
    assert lines[1].split()[:3] == ["function", "source", "timeout"]
    assert {line.split()[0] for line in lines[2:]} == {
        "echo",
        "fails",
        "paced",
        "record",
        "sleep_route",
        "slow",
    }
    record = next(line for line in lines if line.startswith("record"))
    assert record.split()[1:6] == ["invoke", "3s", "20", "128MB", "0"]


def test_default_target_is_the_handlers_package() -> None:
    done = cli("routes")
    assert done.returncode == 0, done.stderr
    assert "place_order" in done.stdout and "queue:shipments" in done.stdout


def test_routes_table_in_process() -> None:
    table = routes_table(load_router("tests.apps.durable:router"))
    assert "slow" in table and "60s" in table


def test_options_and_positionals_in_any_order(tmp_path: Path) -> None:
    """Every subcommand takes its target after its options (argparse's intermixed parsing)."""
    done = cli(
        "invoke",
        "--state-dir",
        str(tmp_path),
        "echo",
        "--async",
        "--payload",
        "{}",
        "tests.apps.durable:router",
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip()) == 36
    # An invoke is a client of the router: no "router started/stopped" lines.
    assert "router started" not in done.stderr and "router stopped" not in done.stderr
    sync = cli(
        "invoke",
        "--payload",
        '"x"',
        "echo",
        "--state-dir",
        str(tmp_path),
        "tests.apps.durable:router",
    )
    assert sync.returncode == 0 and sync.stdout.strip() == '"x"', sync.stderr
    routes = cli("routes", "tests.apps.durable:router")
    assert routes.returncode == 0 and "router 'durable'" in routes.stdout
    help_text = cli("run", "--help")
    assert help_text.returncode == 0 and "--http" in help_text.stdout
    unknown = cli("frobnicate")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


def test_run_takes_its_target_after_options(tmp_path: Path) -> None:
    """``run --state-dir DIR mod:router`` loads mod:router (a missing module says so)."""
    done = cli("run", "--state-dir", str(tmp_path), "no_such_module:router")
    assert done.returncode == 2 and "no_such_module" in done.stderr


def test_routes_shows_each_setting_where_it_applies() -> None:
    table = routes_table(load_router("handlers"))
    rows = {line.split()[0]: line for line in table.splitlines()[2:]}
    cells = {name: re.split(r"\s{2,}", line) for name, line in rows.items()}
    # quote is a plain def handler: it runs in a thread.
    assert rows["quote"].endswith("(thread)") and "(sync)" not in table
    # An HTTP-only function has no asynchronous retries or event age to show.
    assert cells["place_order"][5:7] == ["-", "-"]
    assert cells["send_receipt"][5:7] == ["2", "3600s"]
