"""Synchronous invocation: outcome classes, timeouts, concurrency, context, REPORT, init."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

from eventrouter import (
    Context,
    FunctionError,
    FunctionNotFound,
    FunctionTimeout,
    InvalidRequestContent,
    PayloadTooLarge,
    Router,
    Throttled,
)
from eventrouter.testing import RouterUnderTest, run_router

pytestmark = pytest.mark.anyio


class Order(msgspec.Struct):
    order_id: str
    amount: float


class Receipt(msgspec.Struct):
    order_id: str
    total: float


class Odd(BaseException):
    """A handler may raise something that is not an Exception."""


def make_router() -> Router:
    router = Router("t", max_concurrency=3)

    @router.on_event()
    async def charge(order: Order, ctx: Context) -> Receipt:
        return Receipt(order.order_id, order.amount * 2)

    @router.on_event()
    async def echo(event):  # type: ignore[no-untyped-def]
        return event

    @router.on_event()
    def blocking(event: dict[str, Any]) -> dict[str, Any]:
        return {"thread": threading.current_thread().name, "main": threading.main_thread().name}

    @router.on_event(timeout=0.05)
    async def sleepy(event: Any) -> None:
        await anyio.sleep(10)

    @router.on_event(timeout=0.05)
    def sleepy_sync(event: Any) -> str:
        time.sleep(0.3)
        return "late"

    @router.on_event(timeout=0.05)
    async def stubborn(event: Any) -> str:
        try:  # noqa: SIM105 - the point is a handler that swallows the cancellation
            await anyio.sleep(10)
        except BaseException:
            pass
        return "ignored"

    @router.on_event()
    async def fails(event: Any) -> None:
        raise ValueError("bad amount")

    @router.on_event()
    async def odd(event: Any) -> None:
        raise Odd("not an Exception")

    @router.on_event()
    async def exits(event: Any) -> None:
        raise SystemExit(3)

    @router.on_event()
    async def unencodable(event: Any) -> object:
        return object()

    @router.on_event()
    async def context(event: Any, ctx: Context) -> dict[str, Any]:
        before = ctx.get_remaining_time_in_millis()
        await anyio.sleep(0.02)
        return {
            "aws_request_id": ctx.aws_request_id,
            "request_id": ctx.request_id,
            "function_name": ctx.function_name,
            "function_version": ctx.function_version,
            "arn": ctx.invoked_function_arn,
            "memory": ctx.memory_limit_in_mb,
            "attempt": ctx.attempt,
            "before": before,
            "after": ctx.get_remaining_time_in_millis(),
        }

    @router.on_event(memory_mb=512, timeout=2)
    async def calls_others(event: Any, ctx: Context) -> Any:
        inner = await ctx.invoke("charge", {"order_id": "x", "amount": 1.5})
        request_id = await ctx.invoke_async("echo", {"from": "calls_others"})
        return {"inner": inner, "queued": request_id}

    return router


@pytest.fixture
async def app() -> Any:
    async with run_router(make_router()) as app:
        yield app


async def test_typed_payload_and_result(app: RouterUnderTest) -> None:
    assert await app.invoke("charge", {"order_id": "o1", "amount": 2.5}) == {
        "order_id": "o1",
        "total": 5.0,
    }
    assert await app.invoke("charge", b'{"order_id": "o2", "amount": 1}') == {
        "order_id": "o2",
        "total": 2.0,
    }


async def test_untyped_handler_gets_json_value(app: RouterUnderTest) -> None:
    assert await app.invoke("echo", [1, "two", None]) == [1, "two", None]
    assert await app.invoke("echo", None) is None


async def test_sync_handler_runs_in_a_worker_thread(app: RouterUnderTest) -> None:
    result = await app.invoke("blocking", {})
    assert result["thread"] != result["main"]
    assert result["thread"].startswith("eventrouter-fn")


async def test_validation_error_names_the_field(app: RouterUnderTest) -> None:
    with pytest.raises(FunctionError) as info:
        await app.invoke("charge", {"order_id": "o1", "amount": "lots"})
    body = info.value.body
    assert body["errorType"] == "Runtime.UnmarshalError"
    assert "$.amount" in body["errorMessage"]
    with pytest.raises(FunctionError, match=r"missing required field `order_id`"):
        await app.invoke("charge", {"amount": 1})


async def test_function_error_body(app: RouterUnderTest) -> None:
    with pytest.raises(FunctionError) as info:
        await app.invoke("fails", {})
    body = info.value.body
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "bad amount"
    assert body["requestId"]
    assert any("bad amount" in line for line in body["stackTrace"])
    assert not isinstance(info.value, FunctionTimeout)


async def test_async_timeout_cancels(app: RouterUnderTest) -> None:
    started = time.monotonic()
    with pytest.raises(FunctionTimeout) as info:
        await app.invoke("sleepy", {})
    assert time.monotonic() - started < 5
    body = info.value.body
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 0.05 seconds")
    assert isinstance(info.value, TimeoutError)


async def test_sync_handler_timeout_is_abandoned(app: RouterUnderTest) -> None:
    with pytest.raises(FunctionTimeout, match=r"0\.05 seconds"):
        await app.invoke("sleepy_sync", {})


async def test_handler_that_swallows_cancellation_still_times_out(app: RouterUnderTest) -> None:
    with pytest.raises(FunctionTimeout):
        await app.invoke("stubborn", {})
    # The calling task is not left cancelled: it can go on awaiting.
    await anyio.lowlevel.checkpoint()
    assert await app.invoke("echo", 1) == 1


async def test_odd_exceptions_do_not_crash_the_router(app: RouterUnderTest) -> None:
    with pytest.raises(FunctionError) as info:
        await app.invoke("odd", {})
    assert info.value.body["errorType"] == "Odd"
    with pytest.raises(FunctionError) as info:
        await app.invoke("exits", {})
    assert info.value.body["errorType"] == "SystemExit"
    with pytest.raises(FunctionError) as info:
        await app.invoke("unencodable", {})
    assert info.value.body["errorType"] == "Runtime.MarshalError"
    assert await app.invoke("echo", "still serving") == "still serving"


async def test_bad_input(app: RouterUnderTest) -> None:
    with pytest.raises(FunctionNotFound, match="nope"):
        await app.invoke("nope", {})
    with pytest.raises(FunctionNotFound):
        await app.invoke_async("nope", {})
    with pytest.raises(InvalidRequestContent):
        await app.invoke("echo", b"{not json")
    with pytest.raises(InvalidRequestContent):
        await app.invoke_async("echo", b"\xff\xfe")
    with pytest.raises(InvalidRequestContent):
        await app.invoke("echo", {"when": object()})
    with pytest.raises(PayloadTooLarge):
        await app.invoke("echo", b'"' + b"x" * (6 * 1024 * 1024) + b'"')
    with pytest.raises(PayloadTooLarge):
        await app.invoke_async("echo", "x" * (1024 * 1024))
    # Just under the limits is fine.
    big = "x" * (1024 * 1024 - 2)
    assert await app.invoke("echo", big) == big
    assert await app.invoke_async("echo", big)
    assert await app.invoke("echo", 1) == 1


async def test_context(app: RouterUnderTest) -> None:
    ctx = await app.invoke("context", {})
    assert ctx["aws_request_id"] == ctx["request_id"]
    assert len(ctx["aws_request_id"]) == 36
    assert ctx["function_name"] == "context"
    assert ctx["function_version"] == "$LATEST"
    assert ctx["arn"].startswith("arn:aws:lambda:") and ctx["arn"].endswith(":function:context")
    assert ctx["memory"] == "128"  # text, as in Lambda's Python runtime
    assert ctx["attempt"] == 1
    assert 2900 < ctx["before"] <= 3000
    assert ctx["after"] <= ctx["before"] - 15


async def test_request_ids_are_unique(app: RouterUnderTest) -> None:
    ids = {(await app.invoke("context", {}))["aws_request_id"] for _ in range(5)}
    assert len(ids) == 5


async def test_ctx_invoke_and_invoke_async(app: RouterUnderTest) -> None:
    result = await app.invoke("calls_others", {})
    assert result["inner"] == {"order_id": "x", "total": 3.0}
    assert len(result["queued"]) == 36
    await app.drain()


async def test_reserved_concurrency_throttles_sync_callers() -> None:
    router = Router("t")
    gate = anyio.Event()

    @router.on_event(reserved_concurrency=1)
    async def single(event: Any) -> str:
        await gate.wait()
        return "done"

    @router.on_event(reserved_concurrency=0)
    async def disabled(event: Any) -> None: ...

    async with run_router(router) as app:
        results: list[Any] = []

        async def call() -> None:
            results.append(await app.invoke("single", {}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(Throttled) as info:
                await app.invoke("single", {})
            assert info.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
            gate.set()
        assert results == ["done"]
        assert await app.invoke("single", {}) == "done"  # the slot came back
        with pytest.raises(Throttled):
            await app.invoke("disabled", {})
        assert app.engine.metrics.get("Throttles", "single") == 1


async def test_router_wide_limit_throttles_unreserved() -> None:
    router = Router("t", max_concurrency=3)
    gate = anyio.Event()

    @router.on_event()
    async def wait(event: Any) -> None:
        await gate.wait()

    @router.on_event(reserved_concurrency=1)
    async def reserved(event: Any) -> str:
        return "ok"

    async with run_router(router) as app:
        async with anyio.create_task_group() as tg:
            for _ in range(2):  # the pool is 3 - 1 reserved = 2
                tg.start_soon(app.invoke, "wait", {})
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(Throttled) as info:
                await app.invoke("wait", {})
            assert info.value.reason == "ConcurrentInvocationLimitExceeded"
            # The reservation is a guarantee: the reserved function still runs.
            assert await app.invoke("reserved", {}) == "ok"
            assert app.engine.slots.total_in_flight == 2
            gate.set()
        assert app.engine.slots.total_in_flight == 0


async def test_report_record_per_invocation(log_records: Any) -> None:
    router = Router("t")

    @router.on_event(memory_mb=256)
    async def work(event: Any) -> None:
        await anyio.sleep(0.01)

    @router.on_event(timeout=0.02)
    async def slow(event: Any) -> None:
        await anyio.sleep(1)

    async with run_router(router) as app:
        await app.invoke("work", {})
        await app.invoke("work", {})
        with pytest.raises(FunctionTimeout):
            await app.invoke("slow", {})
    reports = [r for r in log_records() if r["event"] == "REPORT"]
    assert len(reports) == 3
    first, second, timed_out = reports
    assert first["function"] == "work" and first["status"] == "success"
    assert first["memory_size_mb"] == 256
    assert first["duration_ms"] >= 10
    assert first["billed_duration_ms"] >= first["duration_ms"]
    assert first["billed_duration_ms"] - first["duration_ms"] < 1
    assert isinstance(first["billed_duration_ms"], int)
    assert "init_duration_ms" in first  # cold start
    assert "init_duration_ms" not in second  # warm
    assert first["request_id"] != second["request_id"]
    assert timed_out["status"] == "timeout"
    assert timed_out["error_type"] == "Sandbox.Timedout"
    assert first["level"] == "info"


async def test_init_hook_runs_once_and_counts_as_init_duration(log_records: Any) -> None:
    router = Router("t")
    calls: list[str] = []

    async def connect() -> None:
        calls.append("init")
        await anyio.sleep(0.03)

    @router.on_event(init=connect)
    async def uses_init(event: Any) -> int:
        return len(calls)

    @router.on_event()
    async def decorated(event: Any) -> int:
        return len(calls)

    @router.init("decorated")
    def sync_init() -> None:
        calls.append("sync-init")

    async with run_router(router) as app:
        async with anyio.create_task_group() as tg:  # concurrent first invocations
            for _ in range(3):
                tg.start_soon(app.invoke, "uses_init", {})
        assert await app.invoke("uses_init", {}) == 1
        assert await app.invoke("decorated", {}) == 2
        assert calls == ["init", "sync-init"]
    reports = [r for r in log_records() if r["event"] == "REPORT" and r["function"] == "uses_init"]
    cold = [r for r in reports if "init_duration_ms" in r]
    assert len(cold) == 1 and cold[0]["init_duration_ms"] >= 30


async def test_failed_init_fails_the_invocation_and_is_retried() -> None:
    router = Router("t")
    attempts: list[int] = []

    def flaky_init() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("database down")

    @router.on_event(init=flaky_init)
    async def needs_db(event: Any) -> str:
        return "ok"

    async with run_router(router) as app:
        with pytest.raises(FunctionError) as info:
            await app.invoke("needs_db", {})
        assert info.value.body["errorType"] == "ConnectionError"
        assert await app.invoke("needs_db", {}) == "ok"
        assert await app.invoke("needs_db", {}) == "ok"
    assert len(attempts) == 2
