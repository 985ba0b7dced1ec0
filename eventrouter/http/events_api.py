"""EventBridge's ``PutEvents`` on the router's port: AWS JSON 1.1, ``POST /`` with
``X-Amz-Target: AWSEvents.PutEvents``, so ``boto3.client("events", endpoint_url=...)``
puts events on the embedded buses unchanged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from eventrouter.arns import DEFAULT_BUS, bus_name, event_bus_arn
from eventrouter.errors import InvalidRequestContent
from eventrouter.events import new_request_id
from eventrouter.http.asgi import Receive, Scope, Send, read_body, respond
from eventrouter.security.guard import AuthFailure

if TYPE_CHECKING:
    from eventrouter.runtime.interface import Runtime

TARGET_PREFIX = b"AWSEvents."
PUT_EVENTS = b"AWSEvents.PutEvents"
#: Bodies past this are refused unread (the entries' own limit is 256 KB).
BODY_LIMIT = 1024 * 1024
CONTENT_TYPE = b"application/x-amz-json-1.1"
_encoder = msgspec.json.Encoder()


def target_of(scope: Scope) -> bytes | None:
    """The ``X-Amz-Target`` of an EventBridge call (``None`` for any other request)."""
    for name, value in scope["headers"]:
        if name.lower() == b"x-amz-target":
            return value if value.startswith(TARGET_PREFIX) else None
    return None


async def handle(
    running: Callable[[], Awaitable[Runtime]],
    enforce: bool,
    target: bytes,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    request_id = new_request_id()
    headers = [(b"content-type", CONTENT_TYPE), (b"x-amzn-requestid", request_id.encode())]

    async def error(code: str, message: str, status: int = 400) -> None:
        await respond(send, status, _encoder.encode({"__type": code, "message": message}), headers)

    body = await read_body(receive, BODY_LIMIT, scope)
    if body is None:
        await error("ValidationException", "Request is too large.", 413)
        return
    if target != PUT_EVENTS:
        await error("UnknownOperationException", f"{target.decode(errors='replace')} is not served")
        return
    try:
        request: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        await error("SerializationException", "The request body is not valid JSON.")
        return
    entries = request.get("Entries") if isinstance(request, dict) else None
    runtime = await running()
    if enforce:
        buses = runtime.buses
        wanted = {
            bus_name(str(e.get("EventBusName") or DEFAULT_BUS))
            for e in entries or ()
            if isinstance(e, dict)
        }
        resources = [(event_bus_arn(b), buses.policies.get(b)) for b in sorted(wanted)]
        try:
            principal, refused = runtime.guard.authorize_resource(
                scope, body, "events:PutEvents", resources
            )
        except AuthFailure as exc:
            await error(exc.code, str(exc))
            return
        if refused is not None:
            await error(
                "AccessDeniedException",
                f"User: {principal.id} is not authorized to perform: events:PutEvents on "
                f"resource: {refused}",
            )
            return
    try:
        results = await runtime.buses.put_events(entries if isinstance(entries, list) else [])
    except InvalidRequestContent as exc:
        await error("ValidationException", str(exc))
        return
    failed = sum(1 for r in results if "ErrorCode" in r)
    answer = _encoder.encode({"FailedEntryCount": failed, "Entries": results})
    await respond(send, 200, answer, headers)
