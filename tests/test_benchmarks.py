"""The benchmarks still run (quick mode, as ``make bench-quick``): no timing is asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: One row that each scenario writes into the summary table.
EXPECTED_ROWS = (
    "sync invoke overhead",  # 1. invoke overhead
    "metrics on the sync invoke path",
    "sync invoke traced",
    "sync invoke, process isolation",
    "process environment cold start",
    "SnapStart cold start (a restore)",
    "SnapStart cold start vs a cold start",
    "first 100 invocations after start",
    "async invoke end to end",  # 2. the durable queue
    "cost of durability",
    "HTTP no-op route, req/s, 1 conn.",  # 3. HTTP (or says why it was skipped)
    "HTTP no-op route vs the no-framework limit",
    "HTTP no-op route vs bare ASGI on granian",
    "HTTP route, 1,000,000 B JSON body",
    "streamed response, 10 MB: time to first byte",  # 3b. streaming
    "Kafka batch handler, records/s",  # 4. Kafka, against its ceiling and peers
    "Kafka per-record handler",
    "Kafka batch handler vs FastStream",
    "Kafka batch handler, 16 partitions",
    "SQS on moto",  # 5. SQS
    "SQS pollers while a backlog drains",
    "Kinesis on moto, records/s",  # 5b. Kinesis
    "Kinesis CPU per record",
    "SNS via SQS: unwrapping",  # 5c. SNS
    "SNS via SQS on moto",
    "SNS HTTP endpoint",
    "1,000 registered functions",  # 6. how cost grows
    "start-up: the demo, process start to /readyz",  # 10. start-up
    "start-up: a router with an SQS source",
    "1,000,000 B payload",
    "memory per in-flight invocation",
    "async latency at 90% of peak",
    "overrunning invocations",  # 7. timeouts and concurrency under load
    "reserved concurrency under that load",
    "event bus end to end, router.put_events",  # 8. schedules and event buses
    "event bus end to end, ctx.send(to_bus)",
    "PutEvents over HTTP",
    "rule matching, 10,000 rules",
    "schedules firing at once",
    "memory per schedule",
    "rate(1 second) lateness while",
    "async events end to end, 2 workers",  # 9. workers
    "HTTP no-op route, 2 workers",
)


#: The plots of a run.
PLOTS = ("throughput.png", "http_latency.png", "kafka_partitions.png", "sqs_pollers.png")


def test_quick_benchmarks_run_every_scenario(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    missing = [
        name
        for name in EXPECTED_ROWS
        if not any(name in row.split(" | ")[0] for row in rows)
        and not (
            name.startswith("HTTP") and any(row.startswith("| HTTP | skipped") for row in rows)
        )
    ]
    assert not missing, f"scenarios without their row: {missing}\n{done.stdout}"
    assert "scenario 14/14: startup done" in done.stderr  # progress is shown
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["environment"]["cpus"] >= 1 and results["environment"]["packages"]["msgspec"]
    written = (tmp_path / "summary.md").read_text().splitlines()
    assert [line for line in written if line.startswith("| ")] == rows
    for plot in PLOTS:
        assert (tmp_path / plot).read_bytes().startswith(b"\x89PNG"), plot
