"""Asynchronous invocation: retries, event age, throttles, destinations, queue sources."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from eventrouter import Context, Queue, Router, to_directory, to_function, to_queue
from eventrouter.backoff import backoff
from eventrouter.runtime.policies.asynchronous import throttle_backoff
from eventrouter.store import EventStore
from eventrouter.store.base import function_queue
from eventrouter.testing import run_router

pytestmark = pytest.mark.anyio

FAST = {"retry_delays": (0.05, 0.1)}


class Order(msgspec.Struct):
    order_id: str
    amount: float


async def test_success_goes_to_on_success(tmp_path: Path) -> None:
    router = Router("t")

    @router.on_event(on_success=to_directory(tmp_path / "ok"))
    async def charge(order: Order) -> dict[str, Any]:
        return {"charged": order.amount}

    async with run_router(router) as app:
        request_id = await app.invoke_async("charge", {"order_id": "o1", "amount": 4})
        record = await app.next_record("charge", "on_success")
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z")
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["functionArn"].endswith(":function:charge:$LATEST")
    assert record["requestPayload"] == {"order_id": "o1", "amount": 4}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"charged": 4}
    on_disk = msgspec.json.decode((tmp_path / "ok" / f"{request_id}.json").read_bytes())
    assert on_disk == record
    assert not list((tmp_path / "ok").glob(".*tmp"))


async def test_retries_then_on_failure() -> None:
    router = Router("t")
    attempts: list[tuple[int, float]] = []

    @router.on_event(max_retries=2, on_failure=to_queue("failed"), **FAST)
    async def flaky(event: Any, ctx: Context) -> None:
        attempts.append((ctx.attempt, time.monotonic()))
        raise RuntimeError(f"attempt {ctx.attempt}")

    async with run_router(router) as app:
        request_id = await app.invoke_async("flaky", {"n": 1})
        record = await app.next_record("flaky", "on_failure")
        await app.drain()
        queued = await app.queue_messages("failed")
    assert [a for a, _ in attempts] == [1, 2, 3]
    assert attempts[1][1] - attempts[0][1] >= 0.05
    assert attempts[2][1] - attempts[1][1] >= 0.1
    context = record["requestContext"]
    assert context["requestId"] == request_id
    assert context["condition"] == "RetriesExhausted"
    assert context["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["responsePayload"]["errorMessage"] == "attempt 3"
    assert queued == [record]


async def test_retry_succeeds_on_second_attempt() -> None:
    router = Router("t")

    @router.on_event(on_success=to_queue("done"), **FAST)
    async def second_time(event: Any, ctx: Context) -> int:
        if ctx.attempt == 1:
            raise RuntimeError("first")
        return ctx.attempt

    async with run_router(router) as app:
        await app.invoke_async("second_time", {})
        record = await app.next_record("second_time", "on_success")
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responsePayload"] == 2


async def test_max_retries_zero_and_timeouts_count_as_errors() -> None:
    router = Router("t")
    calls = 0

    @router.on_event(max_retries=0, timeout=0.02, on_failure=to_queue("f"))
    async def slow(event: Any) -> None:
        nonlocal calls
        calls += 1
        await anyio.sleep(1)

    async with run_router(router) as app:
        await app.invoke_async("slow", {})
        record = await app.next_record("slow", "on_failure")
    assert calls == 1
    assert record["responsePayload"]["errorType"] == "Sandbox.Timedout"
    assert record["requestContext"]["approximateInvokeCount"] == 1


async def test_invalid_payload_is_not_retried() -> None:
    router = Router("t")
    calls = 0

    @router.on_event(on_failure=to_queue("f"), **FAST)
    async def typed(order: Order) -> None:
        nonlocal calls
        calls += 1

    async with run_router(router) as app:
        await app.invoke_async("typed", {"order_id": "x", "amount": "many"})
        record = await app.next_record("typed", "on_failure")
    assert calls == 0
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responsePayload"]["errorType"] == "Runtime.UnmarshalError"
    assert "$.amount" in record["responsePayload"]["errorMessage"]


async def test_event_age_exceeded_instead_of_a_late_retry() -> None:
    router = Router("t")
    calls = 0

    @router.on_event(max_event_age=60, retry_delays=(120,), on_failure=to_queue("f"))
    async def once(event: Any) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    async with run_router(router) as app:
        await app.invoke_async("once", {})
        record = await app.next_record("once", "on_failure")
    assert calls == 1
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1


async def test_event_already_too_old_is_not_invoked(tmp_path: Path) -> None:
    router = Router("t")
    calls = 0

    @router.on_event(max_event_age=60, on_failure=to_queue("f"))
    async def late(event: Any) -> None:
        nonlocal calls
        calls += 1

    async with run_router(router, state_dir=tmp_path) as app:
        await app.engine.store.enqueue(function_queue("late"), "old-1", b"{}", now=time.time() - 61)
        record = await app.next_record("late", "on_failure")
    assert calls == 0
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestContext"]["requestId"] == "old-1"


async def test_reserved_concurrency_zero_goes_straight_to_on_failure() -> None:
    router = Router("t")

    @router.on_event(reserved_concurrency=0, on_failure=to_queue("f"))
    async def disabled(event: Any) -> None:
        raise AssertionError("never invoked")

    async with run_router(router) as app:
        await app.invoke_async("disabled", {"x": 1})
        record = await app.next_record("disabled", "on_failure")
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["responseContext"]["statusCode"] == 429
    assert record["responsePayload"]["errorType"] == "TooManyRequestsException"


async def test_busy_function_events_wait_without_burning_retries() -> None:
    router = Router("t")
    gate = anyio.Event()
    two_running = anyio.Event()
    running = 0
    peak = 0
    attempts: list[int] = []

    @router.on_event(reserved_concurrency=2, max_retries=0, on_success=to_queue("ok"))
    async def narrow(event: Any, ctx: Context) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 2:
            two_running.set()
        attempts.append(ctx.attempt)
        await gate.wait()
        running -= 1

    async with run_router(router) as app:
        for i in range(10):
            await app.invoke_async("narrow", {"i": i})
        with anyio.fail_after(5):
            await two_running.wait()
        gate.set()
        await app.wait_records(10, "narrow", "on_success")
    assert peak == 2
    assert attempts == [1] * 10
    assert app.engine.metrics.get("Throttles") == 0


def test_throttle_backoff_schedule() -> None:
    assert [throttle_backoff(n) for n in (1, 2, 3, 9, 10, 20)] == [1, 2, 4, 256, 300, 300]


def test_backoff_never_overflows() -> None:
    # A batch retried forever (max_retries=-1) keeps asking for the next wait.
    assert backoff(10_000, 0.5, 30.0) == 30.0
    assert [backoff(n, 0.5, 30.0) for n in (1, 2, 7, 8)] == [0.5, 1.0, 30.0, 30.0]


async def test_failed_delivery_is_counted_kept_and_retried(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    router = Router("t")

    @router.on_event(on_failure=to_directory(tmp_path / "failed"), max_retries=0)
    async def fails(event: Any) -> None:
        raise RuntimeError("x")

    async with run_router(router, state_dir=tmp_path / "state") as app:
        # Break the destination after start-up checks passed.
        (tmp_path / "failed").rmdir()
        (tmp_path / "failed").write_text("now a file")
        request_id = await app.invoke_async("fails", {})
        failed, error = await app.wait_failed_delivery(timeout=5)
        assert failed.record["requestContext"]["requestId"] == request_id
        assert isinstance(error, OSError)
        assert app.engine.metrics.get("DestinationDeliveryFailures", "fails") == 1
        await app.engine.store.flush()
        assert await app.engine.store.count(function_queue("fails")) == 1
        # Repair it: the held record is delivered on the next try (backoff 1 s).
        (tmp_path / "failed").unlink()
        (tmp_path / "failed").mkdir()
        record = await app.next_record("fails", "on_failure", timeout=10)
        await app.drain()
    assert record["requestContext"]["requestId"] == request_id
    assert (tmp_path / "failed" / f"{request_id}.json").exists()


async def test_to_function_destination_invokes_asynchronously() -> None:
    router = Router("t")
    audited: list[Any] = []

    @router.on_event(max_retries=0, on_failure=to_function("audit"))
    async def fails(event: Any) -> None:
        raise KeyError("k")

    @router.on_event(on_success=to_queue("audited"))
    async def audit(record: dict[str, Any]) -> str:
        audited.append(record)
        return "ok"

    async with run_router(router) as app:
        await app.invoke_async("fails", {"v": 1})
        await app.next_record("audit", "on_success")
    assert audited[0]["requestPayload"] == {"v": 1}
    assert audited[0]["responsePayload"]["errorType"] == "KeyError"


async def test_unknown_destination_function_is_refused_at_start() -> None:
    router = Router("t")

    @router.on_event(on_failure=to_function("missing"))
    async def f(event: Any) -> None: ...

    with pytest.raises(Exception, match="missing"):
        async with run_router(router):
            pass


async def test_queue_source_consumes_named_queue() -> None:
    router = Router("t")
    seen: list[Any] = []

    @router.on_event(on_success=to_queue("stage2"))
    async def produce(event: Any) -> Any:
        return event

    @router.on_event(Queue("stage2"), on_success=to_queue("done"))
    async def consume(record: dict[str, Any], ctx: Context) -> Any:
        seen.append(record["responsePayload"])
        return ctx.attempt

    async with run_router(router) as app:
        for i in range(3):
            await app.invoke_async("produce", {"i": i})
        await app.wait_records(3, "consume", "on_success")
    assert sorted(s["i"] for s in seen) == [0, 1, 2]


async def prefill(state_dir: Path, queue: str, bodies: list[tuple[str, bytes]]) -> None:
    """Enqueue before the router starts (as another process would), so batches are full."""
    store = EventStore(state_dir, consumer=False)
    await store.open()
    try:
        for request_id, body in bodies:
            await store.enqueue(queue, request_id, body)
    finally:
        await store.close()


async def test_queue_batches_with_partial_failures(tmp_path: Path) -> None:
    router = Router("t")
    batches: list[list[int]] = []

    @router.on_event(
        Queue("numbers", batch_size=5), max_retries=1, on_failure=to_queue("bad"), **FAST
    )
    async def numbers(batch: list[int], ctx: Context) -> dict[str, Any]:
        batches.append(batch)
        assert ctx.messages is not None and len(ctx.messages) == len(batch)
        failures = [
            {"itemIdentifier": mid}
            for mid, n in zip(ctx.messages, batch, strict=True)
            if n % 3 == 0
        ]
        return {"batchItemFailures": failures}

    await prefill(tmp_path, "numbers", [(f"m{n}", str(n).encode()) for n in range(1, 6)])
    async with run_router(router, state_dir=tmp_path) as app:
        record = await app.next_record("numbers", "on_failure")
        await app.drain()
    assert batches[0] == [1, 2, 3, 4, 5]
    assert batches[1:] == [[3]]  # only the reported message came back, and was retried once
    assert record["requestPayload"] == 3
    assert record["requestContext"]["requestId"] == "m3"
    assert record["requestContext"]["approximateInvokeCount"] == 2


async def test_batch_handler_error_and_invalid_items(tmp_path: Path) -> None:
    router = Router("t")
    batches: list[list[int]] = []

    @router.on_event(Queue("ints", batch_size=10), max_retries=0, on_failure=to_queue("bad"))
    async def ints(batch: list[int]) -> None:
        batches.append(batch)
        raise RuntimeError("whole batch")

    await prefill(tmp_path, "ints", [(f"id-{b.decode()}", b) for b in (b"1", b'"two"', b"3")])
    async with run_router(router, state_dir=tmp_path) as app:
        records = await app.wait_records(3, "ints", "on_failure")
    assert batches == [[1, 3]]
    types = sorted(r["responsePayload"]["errorType"] for r in records)
    assert types == ["Runtime.UnmarshalError", "RuntimeError", "RuntimeError"]


async def test_odd_exceptions_in_async_path_do_not_stop_other_events() -> None:
    router = Router("t")

    class Odd(BaseException):
        pass

    @router.on_event(max_retries=0, on_failure=to_queue("f"))
    async def odd(event: Any) -> None:
        raise Odd("odd")

    @router.on_event(on_success=to_queue("ok"))
    async def fine(event: Any) -> int:
        return int(event)

    async with run_router(router) as app:
        await app.invoke_async("odd", {})
        for i in range(5):
            await app.invoke_async("fine", i)
        await app.wait_records(5, "fine", "on_success")
        record = await app.next_record("odd", "on_failure")
    assert record["responsePayload"]["errorType"] == "Odd"


async def test_no_destination_logs_and_drops(log_records: Any) -> None:
    router = Router("t")

    @router.on_event(max_retries=0)
    async def lonely(event: Any) -> None:
        raise RuntimeError("nobody listens")

    async with run_router(router) as app:
        await app.invoke_async("lonely", {})
        await app.drain()
        assert app.engine.metrics.get("AsyncEventsDropped", "lonely") == 1
    warnings = [r for r in log_records() if r["event"].startswith("event failed")]
    assert warnings and warnings[0]["error"] == "RuntimeError"


async def test_store_errors_do_not_stop_the_dispatcher(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from eventrouter.runtime.policies import asynchronous

    monkeypatch.setattr(asynchronous, "STORE_RETRY", 0.01)
    router = Router("t")

    @router.on_event(on_success=to_queue("ok"))
    async def f(event: Any) -> Any:
        return event

    async with run_router(router) as app:
        store = app.engine.store
        real_claim = store.claim
        failures = 0

        async def flaky_claim(plan: Any) -> Any:
            nonlocal failures
            if failures < 2:
                failures += 1
                raise sqlite3.OperationalError("database or disk is full")
            return await real_claim(plan)

        monkeypatch.setattr(store, "claim", flaky_claim)
        await app.invoke_async("f", 1)
        record = await app.next_record("f", "on_success")
    assert record["responsePayload"] == 1
    assert app.engine.metrics.get("StoreErrors") == 2
