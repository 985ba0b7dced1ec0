"""The benchmarks still run (quick mode): no timing is asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmarks_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("|")]
    assert "sync invoke overhead" in rows[2] and "async invoke end to end" in rows[3]
    assert "Kafka batch handler" in rows[4] and "Kafka per-record handler" in rows[5]
    assert any("SQS on moto" in row for row in rows)
    assert any("process isolation warm overhead" in row for row in rows)
    assert any("environments per GiB" in row for row in rows)
    assert any("HTTP no-op route" in row for row in rows)  # measured, or says why skipped
