"""The shop's functions."""

from typing import Any

from eventrouter import (
    Context,
    Http,
    Queue,
    on_event,
    to_bus,
    to_directory,
    to_function,
    to_queue,
)
from handlers import store
from handlers.models import Order, Receipt

#: Where placed orders are announced (handlers/reports.py listens).
ORDER_PLACED = to_bus("orders", source="shop", detail_type="order.placed")


@on_event(None, timeout=1.0)
def quote(order: Order) -> dict[str, float]:
    """A plain ``def`` handler: runs in the worker-thread pool, never on the event loop."""
    return {"total": round(sum(i.quantity * i.unit_price for i in order.items), 2)}


@on_event(Http("POST /orders"), timeout=3.0, reserved_concurrency=50)
async def place_order(order: Order, ctx: Context) -> Receipt:
    """Place an order: the caller waits for the receipt; the e-mail is sent asynchronously."""
    total = (await ctx.invoke("quote", order))["total"]
    receipt = Receipt(order_id=order.order_id, email=order.email, total=total)
    await store.place(order.order_id, order.email, total)
    await ctx.invoke_async("send_receipt", receipt)
    await ctx.send(ORDER_PLACED, receipt)
    ctx.log.info("order placed", order_id=order.order_id, total=total)
    return receipt


@on_event(
    None,
    timeout=5.0,
    max_retries=2,
    retry_delays=(2, 4),
    max_event_age=3600,
    on_success=to_queue("shipments"),
    on_failure=to_function("audit"),
)
async def send_receipt(receipt: Receipt, ctx: Context) -> dict[str, Any]:
    """Asynchronous follow-up; addresses at bounce.example fail, are retried, then audited."""
    if receipt.email.endswith("@bounce.example"):
        raise ConnectionError(f"mail server refused {receipt.email}")
    ctx.log.info("receipt sent", order_id=receipt.order_id, attempt=ctx.attempt)
    await store.set_status(receipt.order_id, "receipt sent")
    return {"sent_to": receipt.email, "order_id": receipt.order_id}


@on_event(Queue("shipments"), on_success=to_directory("out/shipped"))
async def ship(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Consumes the named queue that send_receipt's on_success destination fills."""
    order_id = record["responsePayload"]["order_id"]
    ctx.log.info("shipping", order_id=order_id)
    await store.set_status(order_id, "shipped")
    return {"shipped": order_id}


@on_event(None, on_success=to_directory("out/audit"))
async def audit(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Receives the invocation record of every failed receipt."""
    context = record["requestContext"]
    ctx.log.warning(
        "receipt failed", request_id=context["requestId"], condition=context["condition"]
    )
    await store.set_status(record["requestPayload"]["order_id"], "receipt failed")
    return {"audited": context["requestId"], "error": record["responsePayload"]["errorType"]}


@on_event(Http("GET /orders/{order_id}"))
async def order_status(event: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A Lambda-style handler: API Gateway's event in, ``statusCode``/``body`` out."""
    order_id = event["pathParameters"]["order_id"]
    verbose = event.get("queryStringParameters", {}).get("verbose") == "1"
    order = await store.find(order_id)
    if order is None:
        body: dict[str, Any] = {"message": f"no order {order_id}"}
        return {"statusCode": 404, "headers": {"content-type": "application/json"}, "body": body}
    if verbose:
        order["request_id"] = ctx.aws_request_id
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": order}
