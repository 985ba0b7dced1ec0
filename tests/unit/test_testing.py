from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventrouter import FunctionError, Router, to_queue
from eventrouter.loader import load_router
from eventrouter.testing import TestRouter, run_router


def make_router() -> Router:
    router = Router("t")

    @router.on_event(on_success=to_queue("done"))
    async def double(n: int) -> int:
        return n * 2

    @router.on_event()
    def fails(event: Any) -> None:
        raise RuntimeError("sync failure")

    return router


def test_sync_test_router() -> None:
    with TestRouter(make_router()) as app:
        assert app.invoke("double", 21) == 42
        app.invoke_async("double", 5)
        assert app.next_record("double", "on_success")["responsePayload"] == 10
        with pytest.raises(FunctionError, match="sync failure"):
            app.invoke("fails", {})
        app.drain()


@pytest.mark.anyio
async def test_demo_application(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo in handlers/: order → receipt → shipment, and a bounce → retries → audit."""
    router = load_router("handlers")
    monkeypatch.chdir(tmp_path)
    # The demo waits 2 s and 4 s between retries; shorten them for the test.
    send_receipt = router.functions["send_receipt"]
    short = msgspec.structs.replace(send_receipt.settings, retry_delays=(0.01,))
    monkeypatch.setattr(send_receipt, "settings", short)
    order = {
        "order_id": "o-1",
        "email": "ann@example.com",
        "items": [{"sku": "tea", "quantity": 2, "unit_price": 3.5}],
    }
    from handlers import reports

    reports._placed.clear()  # the demo's counter lives in its module, shared by tests
    async with run_router(router) as app:
        receipt = await app.invoke("place_order", order)
        assert receipt == {"order_id": "o-1", "email": "ann@example.com", "total": 7.0}
        shipped = await app.next_record("ship", "on_success")
        assert shipped["responsePayload"] == {"shipped": "o-1"}
        bounced = {**order, "order_id": "o-2", "email": "bob@bounce.example"}
        await app.invoke("place_order", bounced)
        audited = await app.next_record("audit", "on_success")
        assert audited["responsePayload"]["error"] == "ConnectionError"
        failed = await app.next_record("send_receipt", "on_failure")
        assert failed["requestContext"]["approximateInvokeCount"] == 3
        with pytest.raises(FunctionError, match="unit_price"):
            await app.invoke("place_order", {**order, "items": [{"sku": "x", "quantity": 1}]})
        # The demo keeps its orders: what GET /orders/{id} shows is what happened.

        async def status(order_id: str) -> tuple[int, Any]:
            event = {"pathParameters": {"order_id": order_id}, "queryStringParameters": {}}
            answer = await app.invoke("order_status", event)
            return answer["statusCode"], answer["body"]

        assert await status("o-1") == (
            200,
            {"order_id": "o-1", "email": "ann@example.com", "total": 7.0, "status": "shipped"},
        )
        assert (await status("o-2"))[1]["status"] == "receipt failed"
        assert (await status("nope"))[0] == 404
        # Each order went over the "orders" bus to count_order; the hourly report sums them.
        await app.drain()
        assert app.engine.metrics.get("MatchedEvents", "count_order") == 2
        event = {"time": "2026-12-03T12:00:00Z", "detail-type": "Scheduled Event"}
        report = await app.invoke("hourly_report", event)
        assert report == {"hour": "2026-12-03T12:00:00Z", "orders": 2, "sales": 14.0}
        # Relative to_directory paths write under the test's temporary folder, not the project.
        assert len(os.listdir(app.directory("out/shipped"))) == 1
        assert len(os.listdir(app.directory("out/audit"))) == 1
    assert not (tmp_path / "out" / "shipped").exists()


@pytest.mark.anyio
async def test_next_record_says_what_it_waited_for() -> None:
    router = Router("t")

    @router.on_event(on_success=to_queue("done"), retry_delays=(60, 120))
    async def flaky(n: int) -> int:
        raise ValueError("always")

    async with run_router(router) as app:
        await app.invoke_async("flaky", 1)
        with pytest.raises(TimeoutError) as info:
            await app.next_record("flaky", "on_failure", timeout=0.3)
    message = str(info.value)
    assert "flaky's on_failure destination" in message
    assert "arrived meanwhile: nothing" in message
    assert "retry_delays=(60, 120)" in message and "about 180 s" in message
