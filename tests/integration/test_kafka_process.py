"""The Kafka source in real router processes: crashes, restarts, two consumers in a group."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from tests.kafka_broker import committed, create_topic, produce_fast, unique
from tests.processes import RouterProcess, wait_until

pytestmark = pytest.mark.integration

TARGET = "tests.apps.streams:router"
PARTITIONS = 4


def lines(out: Path) -> list[tuple[int, int, int]]:
    path = out / "processed.log"
    if not path.exists():
        return []
    return [tuple(int(x) for x in line.split(":")) for line in path.read_text().split()]  # type: ignore[misc]


async def produce(kafka: str, topic: str, total: int) -> None:
    """Records ``{"n": 0}`` ... ``{"n": total - 1}``, round robin over the partitions."""
    await produce_fast(
        kafka, topic, [(n % PARTITIONS, None, msgspec.json.encode({"n": n})) for n in range(total)]
    )


def setup(kafka: str, total: int) -> tuple[str, str]:
    topic, group = unique("proc"), unique("g")

    async def prepare() -> None:
        await create_topic(kafka, topic, PARTITIONS)
        await produce(kafka, topic, total)

    anyio.run(prepare)
    return topic, group


def router(tmp_path: Path, name: str, kafka: str, topic: str, group: str) -> RouterProcess:
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC": topic, "KAFKA_GROUP": group}
    return RouterProcess(tmp_path / name, tmp_path, target=TARGET, env=env)


def test_sigkill_mid_run_then_restart_skips_nothing(kafka: str, tmp_path: Path) -> None:
    total = 2000
    topic, group = setup(kafka, total)
    first = router(tmp_path, "a", kafka, topic, group)
    first.wait_for(lambda rs: first.successes("record") >= 15)  # 300 records
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    before = {n for _, _, n in lines(tmp_path)}
    assert 300 <= len(before) < total, "the kill must land mid-run"

    second = router(tmp_path, "b", kafka, topic, group)
    wait_until(lambda: {n for _, _, n in lines(tmp_path)} >= set(range(total)))
    assert second.stop() == 0
    seen = Counter(n for _, _, n in lines(tmp_path))
    assert set(seen) == set(range(total))
    # Records of each partition were handled in order within each process.
    for pid in {pid for pid, _, _ in lines(tmp_path)}:
        for p in range(PARTITIONS):
            ns = [n for q, pp, n in lines(tmp_path) if q == pid and pp == p]
            assert ns == sorted(ns)
    final = anyio.run(committed, kafka, group, topic, PARTITIONS)
    assert final == {p: total // PARTITIONS for p in range(PARTITIONS)}


def test_two_routers_share_partitions_and_one_takes_over(kafka: str, tmp_path: Path) -> None:
    total = 2000
    topic, group = setup(kafka, 0)
    a = router(tmp_path, "a", kafka, topic, group)
    b = router(tmp_path, "b", kafka, topic, group)

    def assigned(proc: RouterProcess) -> set[str]:
        latest: set[str] = set()
        for r in proc.records:
            if r.get("event") == "partitions assigned":
                latest = set(r["partitions"])
            elif r.get("event") == "partitions revoked":
                latest -= set(r["partitions"])
        return latest

    wait_until(
        lambda: (
            len(assigned(a)) + len(assigned(b)) == PARTITIONS
            and bool(assigned(a))
            and bool(assigned(b))
        ),
        within=30,
    )
    assert not assigned(a) & assigned(b)

    anyio.run(produce, kafka, topic, total)
    wait_until(lambda: len({pid for pid, _, _ in lines(tmp_path)}) == 2)  # both are working
    assert a.stop(signal.SIGKILL) == -signal.SIGKILL
    wait_until(lambda: len(assigned(b)) == PARTITIONS, within=30)
    wait_until(lambda: {n for _, _, n in lines(tmp_path)} >= set(range(total)))
    assert b.stop() == 0
    assert {n for _, _, n in lines(tmp_path)} == set(range(total))


def holding(records: list[dict[str, Any]]) -> dict[int, set[str]]:
    """The partitions each worker holds, from its assignment and revocation lines."""
    held: dict[int, set[str]] = {}
    for r in records:
        if r.get("event") == "partitions assigned":
            held.setdefault(r["worker"], set()).update(r["partitions"])
        elif r.get("event") == "partitions revoked":
            held.setdefault(r["worker"], set()).difference_update(r["partitions"])
    return held


def test_workers_split_the_partitions_and_survive_a_killed_one(kafka: str, tmp_path: Path) -> None:
    """``run --workers 2``: both workers are members of the function's group (the partitions
    are split between them); one killed, the partitions move and every record is handled."""
    total = 2000
    topic, group = setup(kafka, 0)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_TOPIC": topic, "KAFKA_GROUP": group}
    proc = RouterProcess(tmp_path / "state", tmp_path, "--workers", "2", target=TARGET, env=env)
    proc.wait_for(lambda rs: any(r.get("event") == "workers started" for r in rs))
    # Both workers hold partitions (a record per assignment, not per worker: count workers).
    proc.wait_for(lambda rs: all(holding(rs).get(w) for w in (0, 1)), timeout=60)

    anyio.run(produce, kafka, topic, total)
    workers = [r["pid"] for r in proc.records if r.get("event") == "worker ready"]
    wait_until(lambda: {pid for pid, _, _ in lines(tmp_path)} == set(workers))  # split
    os.kill(workers[0], signal.SIGKILL)
    wait_until(lambda: {n for _, _, n in lines(tmp_path)} >= set(range(total)), within=60)
    assert proc.stop() == 0
    assert {n for _, _, n in lines(tmp_path)} == set(range(total))
