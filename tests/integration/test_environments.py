"""Process environments (``isolation="process"``): cold and warm starts, hard limits, crashes,
idle shutdown, and calls back into the router. Real worker processes, no fakes."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from eventrouter import ConfigError, Router, to_function
from eventrouter.errors import FunctionError, FunctionTimeout
from eventrouter.runtime.engine import Engine
from eventrouter.testing import run_router
from tests.apps.isolated import router

pytestmark = pytest.mark.anyio

Logs = Callable[[], list[dict[str, Any]]]


def reports(logs: Logs, function: str) -> list[dict[str, Any]]:
    return [r for r in logs() if r["event"] == "REPORT" and r["function"] == function]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_cold_then_warm_start_runs_init_once(log_records: Logs) -> None:
    async with run_router(router) as app:
        first = await app.invoke("whoami", {"echo": 1})
        second = await app.invoke("whoami", {"echo": 2})
        assert first["pid"] == second["pid"] != os.getpid()
        assert first["inits"] == second["inits"] == 1  # init ran once, in that environment
        assert (first["echo"], second["echo"]) == (1, 2)
        assert first["function"] == "whoami" and first["memory"] == "128"
        assert 0 < first["remaining_ms"] <= 5000
        assert app.environments("whoami") == [first["pid"]]
    cold, warm = reports(log_records, "whoami")
    assert cold["init_duration_ms"] > 0
    assert "init_duration_ms" not in warm
    # Max Memory Used is the environment's own resident memory: a real figure, in range.
    assert 5 <= cold["max_memory_used_mb"] <= warm["max_memory_used_mb"] <= 128
    assert gone(first["pid"])  # the router's shutdown stops its environments


async def test_pool_grows_with_concurrent_invocations(tmp_path: Path) -> None:
    path = str(tmp_path / "gate.sock")
    results: list[dict[str, int]] = []
    listener = await anyio.create_unix_listener(path)

    async def call() -> None:
        results.append(await app.invoke("gate", {"socket": path}))

    async with run_router(router) as app, listener, anyio.create_task_group() as tg:
        tg.start_soon(call)
        tg.start_soon(call)
        # Both invocations are inside their handlers at once: two environments.
        inside = [await listener.accept(), await listener.accept()]
        assert len(app.environments("gate")) == 2
        for stream in inside:
            await stream.send(b"go")
            await stream.aclose()
    assert len({r["pid"] for r in results}) == 2
    assert [r["inits"] for r in results] == [1, 1]  # each environment ran its own init


async def test_cpu_bound_handler_is_stopped_by_the_hard_timeout(log_records: Logs) -> None:
    async with run_router(router) as app:
        with pytest.raises(FunctionTimeout) as caught:
            await app.invoke("spin", None)
        assert caught.value.body["errorType"] == "Sandbox.Timedout"
        assert "Task timed out after 0.50 seconds" in caught.value.body["errorMessage"]
        await app.wait_environments("spin", 0)  # killed, not left spinning
        assert await app.invoke("spin", "quick") is None  # the next invocation is served
        (pid,) = app.environments("spin")
    timed_out, served = reports(log_records, "spin")
    assert timed_out["status"] == "timeout" and timed_out["duration_ms"] >= 500
    assert "init_duration_ms" in served  # by a new environment: a cold start
    assert gone(pid)


async def test_memory_limit_fails_the_invocation_and_replaces_the_environment(
    log_records: Logs,
) -> None:
    async with run_router(router) as app:
        small = await app.invoke("hog", {"mb": 8})
        with pytest.raises(FunctionError) as caught:
            await app.invoke("hog", {"mb": 300})
        assert caught.value.body["errorType"] == "Runtime.OutOfMemory"
        assert "signal: killed" in caught.value.body["errorMessage"]
        assert gone(small["pid"]) or small["pid"] not in app.environments("hog")
        again = await app.invoke("hog", {"mb": 8})
        assert again["pid"] != small["pid"] and again["bytes"] == 8 << 20
    statuses = [(r["status"], r.get("error_type")) for r in reports(log_records, "hog")]
    assert statuses == [("success", None), ("error", "Runtime.OutOfMemory"), ("success", None)]
    assert reports(log_records, "hog")[1]["max_memory_used_mb"] > 128
    # One line says what happened, with the figures only the environment knows.
    (line,) = [
        r
        for r in log_records()
        if r.get("level") in ("warning", "error") and r.get("function") == "hog"
    ]
    assert line["event"] == "environment out of memory" and line["memory_mb"] == 128
    assert line["request_id"] == caught.value.body["requestId"]


@pytest.mark.parametrize(
    ("how", "exit_text"),
    [("segfault", "signal: segmentation fault"), ("exit", "exit status 3"), ("kill", "killed")],
)
async def test_a_crashing_environment_fails_only_its_invocation(
    how: str, exit_text: str, log_records: Logs
) -> None:
    async with run_router(router) as app:
        before = await app.invoke("crash", {})
        with pytest.raises(FunctionError) as caught:
            await app.invoke("crash", {"how": how})
        assert caught.value.body["errorType"] == "Runtime.ExitError"
        assert exit_text in caught.value.body["errorMessage"]
        after = await app.invoke("crash", {})
        assert after["pid"] != before["pid"]
        assert (await app.invoke("whoami", {}))["inits"] == 1  # the router keeps serving
    (line,) = [r for r in log_records() if r.get("level") == "error"]
    assert line["event"] == "environment exited" and exit_text in line["exit"]


async def test_an_environment_killed_from_outside_is_replaced() -> None:
    async with run_router(router) as app:
        first = await app.invoke("whoami", {})
        os.kill(first["pid"], signal.SIGKILL)
        await app.wait_environments("whoami", 0)
        second = await app.invoke("whoami", {})
        assert second["pid"] != first["pid"] and second["inits"] == 1


async def test_idle_environments_are_shut_down(log_records: Logs) -> None:
    async with run_router(router) as app:
        pid = await app.invoke("brief", {})
        assert app.environments("brief") == [pid]
        await app.wait_environments("brief", 0)  # idle_timeout=0.2
        assert gone(pid)
        assert await app.invoke("brief", {}) != pid
    first, second = reports(log_records, "brief")
    assert "init_duration_ms" in first and "init_duration_ms" in second  # two cold starts


async def test_typed_payload_is_validated_in_the_environment() -> None:
    async with run_router(router) as app:
        assert await app.invoke("total", {"id": 1, "amount": 2.5}) == 5.0
        with pytest.raises(FunctionError) as caught:
            await app.invoke("total", {"id": "one", "amount": 2.5})
        assert caught.value.body["errorType"] == "Runtime.UnmarshalError"
        assert "$.id" in caught.value.body["errorMessage"]


async def test_ctx_invoke_from_an_environment_goes_through_the_router() -> None:
    async with run_router(router) as app:
        result = await app.invoke("caller", {"amount": 4})
        assert result["doubled"] == 8.0
        assert isinstance(result["queued"], str) and len(result["queued"]) == 36


async def test_asynchronous_invocations_and_destinations_apply(tmp_path: Path) -> None:
    from tests.apps import isolated

    local = Router("isolated-async")
    local.on_event(
        None, name="crash", isolation="process", max_retries=0, on_failure=to_function("whoami")
    )(isolated.crash)
    local.on_event(None, name="whoami", isolation="process")(isolated.whoami)
    async with run_router(local, state_dir=tmp_path) as app:
        await app.invoke_async("crash", {"how": "exit"})
        record = await app.next_record("crash", "on_failure")
    assert record["responsePayload"]["errorType"] == "Runtime.ExitError"
    assert record["requestContext"]["condition"] == "RetriesExhausted"


async def test_a_handler_that_cannot_be_imported_by_name_is_refused() -> None:
    local = Router("local")

    @local.on_event(None, isolation="process")
    async def nested(event: Any) -> None: ...

    with pytest.raises(ConfigError, match="module-level function"):
        Engine(local)


async def test_an_init_that_fails_fails_the_invocation_and_is_retried_next_time() -> None:
    from tests.apps import isolated

    local = Router("init-fails")
    local.on_event(None, name="broken", isolation="process", init=isolated.failing_init)(
        isolated.whoami
    )
    async with run_router(local) as app:
        for _ in range(2):
            with pytest.raises(FunctionError) as caught:
                await app.invoke("broken", {})
            assert caught.value.body["errorType"] == "RuntimeError"
            assert "init refused" in caught.value.body["errorMessage"]
        await app.wait_environments("broken", 0)  # a failed init leaves no environment


@pytest.mark.integration
async def test_kafka_per_record_handler_in_an_environment(kafka: str) -> None:
    """Stream rules apply: the failed record's offset is reported, retries end at on_failure."""
    from eventrouter import Kafka, to_queue
    from tests.apps import isolated
    from tests.kafka_broker import FAST_GROUP, create_topic, produce_fast, unique

    topic = unique("isolated")
    await create_topic(kafka, topic, 1)
    clicks = [isolated.Click(0, i, poison=i == 3) for i in range(6)]
    await produce_fast(kafka, topic, [(0, None, msgspec.json.encode(c)) for c in clicks])
    local = Router("isolated-kafka")
    local.on_event(
        Kafka(
            topic,
            group=unique("g"),
            bootstrap_servers=kafka,
            consumer_options=FAST_GROUP,
            batch_size=10,
            batching_window=0,
            max_retries=1,
            retry_backoff=(0.02, 0.1),
        ),
        name="count_click",
        isolation="process",
        on_failure=to_queue("clicks-failed"),
    )(isolated.count_click)
    async with run_router(local) as app:
        record = await app.next_record("count_click", "on_failure")
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "poison click 3"
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["KafkaBatchInfo"]["firstOffset"] == 3  # per-record: from the failed record on
