"""What each worker of ``run --workers`` runs, and the supervisor's command-line handling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eventrouter import Router
from eventrouter.cli import _SUPERVISOR_OPTIONS, _without
from eventrouter.runtime.engine import Engine
from eventrouter.sources.shards.memory import MemoryKinesis
from eventrouter.supervisor import worker_count

pytestmark = pytest.mark.anyio


async def test_a_stream_without_leases_is_read_by_worker_0_only(tmp_path: Path) -> None:
    """Its checkpoints are in the shared store without leases: two readers would both read
    every shard."""
    router = Router("streams")

    @router.on_event(MemoryKinesis("clicks", shards=2))
    async def count(batch: list[Any]) -> None:
        return None

    for worker, readers in ((0, 1), (1, 0)):
        engine = Engine(router, state_dir=tmp_path, worker=worker)
        await engine.start()
        try:
            assert len(engine.streams) == readers
        finally:
            await engine.shutdown()


def test_the_supervisors_options_are_not_passed_to_workers() -> None:
    argv = ["run", "app:router", "--workers", "2", "--http", "127.0.0.1:0", "--reload",
            "--reload-dir=src", "--grace", "5"]  # fmt: skip
    kept, taken = _without(argv, _SUPERVISOR_OPTIONS)
    assert kept == ["run", "app:router", "--http", "127.0.0.1:0", "--grace", "5"]
    assert taken == ["--workers", "2", "--reload", "--reload-dir=src"]


def test_worker_count() -> None:
    assert worker_count("3") == 3
    assert worker_count("auto") >= 1
    for bad in ("0", "-1", "many"):
        with pytest.raises(ValueError, match="--workers"):
            worker_count(bad)
