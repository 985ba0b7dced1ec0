"""An app for the HTTP tests: every way in and out of a route, and the Invoke API."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import anyio.to_thread
import msgspec

from eventrouter import Context, Http, HttpEvent, Response, Router, to_queue

router = Router("web")


class Order(msgspec.Struct):
    order_id: str
    amount: float


class Accepted(msgspec.Struct):
    order_id: str
    path_id: str
    query: dict[str, str]
    trace: str | None


@router.on_event(Http("POST /orders/{order_id}"))
async def create_order(order: Order, ctx: Context) -> Accepted:
    """Create an order."""
    return Accepted(
        order_id=order.order_id,
        path_id=ctx.http.path_params["order_id"],
        query=ctx.http.query,
        trace=ctx.http.headers.get("x-trace"),
    )


@router.on_event(Http("GET,POST,DELETE /raw/{rest+}"))
async def raw(event: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {"event": event, "request_id": ctx.aws_request_id}


@router.on_event(Http("POST /typed-event"))
async def typed_event(event: HttpEvent) -> dict[str, Any]:
    return {"method": event.requestContext.http["method"], "body": event.body}


@router.on_event(Http("GET /lambda-style"))
async def lambda_style(event: Any) -> dict[str, Any]:
    return {
        "statusCode": 201,
        "headers": {"x-custom": "yes", "content-type": "text/plain"},
        "body": "aGVsbG8=",
        "isBase64Encoded": True,
        "cookies": ["a=1", "b=2"],
    }


@router.on_event(Http("GET /response"))
async def explicit(event: Any) -> Response:
    return Response(b"\x00\x01binary", status=202, headers={"X-Kind": "raw"})


@router.on_event(Http("GET /nothing"))
async def nothing(event: Any) -> None:
    return None


@router.on_event(Http("GET /items"))
async def list_items(event: Any) -> list[int]:
    return [1, 2, 3]


@router.on_event(Http("GET /items/special"))
async def special_item(event: Any) -> str:
    return "special"


@router.on_event(Http("GET /items/{item_id}"))
async def get_item(event: Any, ctx: Context) -> str:
    return f"item {ctx.http.path_params['item_id']}"


@router.on_event(Http("POST /fail"))
async def fail(event: Any) -> None:
    raise ValueError("handler broke")


@router.on_event(Http("GET /bad-return"))
async def bad_return(event: Any) -> Any:
    return {"statusCode": "teapot"}


@router.on_event(Http("GET /slow"), timeout=0.05)
async def slow_route(event: Any) -> None:
    await anyio.sleep(5)


# Thread-safe: the tests run the server on another thread than their own event loop.
single_entered = threading.Event()
single_gate = threading.Event()


@router.on_event(Http("GET /single"), reserved_concurrency=1)
async def single(event: Any) -> str:
    single_entered.set()
    await anyio.to_thread.run_sync(single_gate.wait, 10)
    return "done"


@router.on_event(timeout=0.05)
async def slow(event: Any) -> None:
    await anyio.sleep(5)


@router.on_event()
async def echo(event: Any, ctx: Context) -> Any:
    ctx.log.info("echoing", size=len(str(event)))
    client = ctx.client_context
    shown = None if client is None else {"custom": client.custom, "env": client.env}
    return {"event": event, "client_context": shown}


@router.on_event()
async def fails(event: Any) -> None:
    raise RuntimeError("invoke api failure")


@router.on_event()
def typed_sync(order: Order) -> float:
    time.sleep(0.001)
    return order.amount


@router.on_event(on_success=to_queue("done"))
async def queued(event: Any) -> Any:
    return event


@router.on_event(reserved_concurrency=0)
async def disabled(event: Any) -> None: ...
