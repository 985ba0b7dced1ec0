"""Lambda's Invoke API: ``POST /2015-03-31/functions/{FunctionName}/invocations``, and
``InvokeWithResponseStream``:
``POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations`` (the answer as
an event stream, ``http/streams.py``).

Answers in the shapes botocore expects, so any AWS SDK pointed at the router with
``endpoint_url`` works: errors carry ``x-amzn-ErrorType`` and ``{"Type", "message"}``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import msgspec

from eventrouter.arns import LATEST, function_arn
from eventrouter.config import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT
from eventrouter.errors import InvalidRequestContent, PayloadTooLarge
from eventrouter.events import new_request_id
from eventrouter.http.asgi import Receive, Scope, Send, aws_error, read_body, respond
from eventrouter.http.streams import InvokeStream, invoke_complete
from eventrouter.observability.function_logs import Entry, log_capture, tail_bytes
from eventrouter.observability.function_logs import tail as tail_lines
from eventrouter.outcomes import Status
from eventrouter.security.guard import AuthFailure
from eventrouter.security.permissions import INVOKE

if TYPE_CHECKING:
    from eventrouter.outcomes import Outcome
    from eventrouter.runtime.interface import Runtime

PREFIX = "/2015-03-31/functions/"
SUFFIX = "/invocations"
STREAM_PREFIX = "/2021-11-15/functions/"
STREAM_SUFFIX = "/response-streaming-invocations"
#: Where the app sends a request to :func:`handle`.
PREFIXES = (PREFIX, STREAM_PREFIX)
LOG_TAIL_BYTES = 4096
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
STREAM_INVOCATION_TYPES = ("RequestResponse", "DryRun")
LOG_TYPES = (b"None", b"Tail")

_STATUS = {InvalidRequestContent: 400, PayloadTooLarge: 413}


def function_name(identifier: str, qualifier: str | None) -> tuple[str, str | None]:
    """The function name in a name, ``name:qualifier``, partial or full ARN; and the qualifier."""
    parts = identifier.split(":")
    if identifier.startswith("arn:"):
        # arn:aws:lambda:region:account:function:name[:qualifier]
        if len(parts) not in (7, 8) or parts[2] != "lambda" or parts[5] != "function":
            return "", None
        name, rest = parts[6], parts[7:]
    elif len(parts) >= 3 and parts[1] == "function":  # account:function:name[:qualifier]
        name, rest = parts[2], parts[3:]
    else:
        name, rest = parts[0], parts[1:]
    if len(rest) > 1:
        return "", None
    return name, rest[0] if rest else qualifier


async def handle(
    running: Callable[[], Awaitable[Runtime]],
    enforce: bool,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Answer one request under :data:`PREFIXES`; ``running()`` gives the runtime (started
    on first use by an app that owns one)."""
    path: str = scope["path"]
    request_id = new_request_id()
    streaming = path.startswith(STREAM_PREFIX)
    prefix, suffix = (STREAM_PREFIX, STREAM_SUFFIX) if streaming else (PREFIX, SUFFIX)

    async def error(
        status: int, error_type: str, message: str, allow: bytes | None = None, **extra: Any
    ) -> None:
        headers = []
        if status == 429:
            headers.append((b"retry-after", b"1"))
        if allow is not None:
            headers.append((b"allow", allow))
        await aws_error(send, status, error_type, message, request_id, headers, **extra)

    if not path.endswith(suffix):
        await error(404, "UnknownOperationException", f"no operation {scope['method']} {path}")
        return
    if scope["method"] != "POST":
        await error(
            405,
            "UnknownOperationException",
            f"no operation {scope['method']} {path}: "
            + ("InvokeWithResponseStream" if streaming else "Invoke")
            + " is POST",
            allow=b"POST",
        )
        return
    raw_query: bytes = scope["query_string"]
    qualifiers = parse_qs(raw_query.decode("latin-1")).get("Qualifier") if raw_query else None
    identifier = path[len(prefix) : -len(suffix)]
    name, qualifier = function_name(identifier, qualifiers[0] if qualifiers else None)
    runtime = await running()
    # Only X-Amz-* headers matter here (servers give lower-cased names, as ASGI requires).
    headers = {k: v for k, v in scope["headers"] if k[:6] == b"x-amz-"}
    invocation_type = headers.get(b"x-amz-invocation-type", b"RequestResponse").decode("latin-1")
    allowed_types = STREAM_INVOCATION_TYPES if streaming else INVOCATION_TYPES
    if invocation_type not in allowed_types:
        await error(
            400,
            "InvalidParameterValueException",
            f"X-Amz-Invocation-Type must be one of {', '.join(allowed_types)}",
        )
        return
    limit = ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
    body = await read_body(receive, limit, scope)
    if body is None:
        await error(
            413,
            "RequestTooLargeException",
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
        )
        return
    known = name in runtime.router.functions and qualifier in (None, LATEST)
    if enforce or not known:
        shown = function_arn(name or identifier) + (f":{qualifier}" if qualifier else "")
    if enforce:
        # Authenticated and authorized before anything tells whether the function exists:
        # an unknown function and a refused one get the same 403.
        try:
            principal, allowed = runtime.guard.authorize_http(scope, body, "AWS_IAM", name, INVOKE)
        except AuthFailure as exc:
            await error(403, exc.code, str(exc))
            return
        if not (known and allowed):
            await error(
                403,
                "AccessDeniedException",
                f"User: {principal.id} is not authorized to perform: {INVOKE} on resource: "
                f"{shown} because no resource-based policy allows the {INVOKE} action",
            )
            return
    elif not known:
        await error(404, "ResourceNotFoundException", f"Function not found: {shown}")
        return
    if invocation_type == "DryRun":
        await respond(send, 204, b"", [(b"x-amzn-requestid", request_id.encode())])
        return
    payload = body or b"{}"
    if invocation_type == "Event":
        try:
            queued_id = await runtime.invoke_async(name, payload)
        except (InvalidRequestContent, PayloadTooLarge) as exc:
            await error(_STATUS[type(exc)], exc.error_type, str(exc))
            return
        await respond(send, 202, b"", [(b"x-amzn-requestid", queued_id.encode())])
        return
    client_context = None
    raw_context = headers.get(b"x-amz-client-context")
    if raw_context:
        try:
            client_context = msgspec.json.decode(base64.b64decode(raw_context, validate=True))
        except (binascii.Error, msgspec.DecodeError):
            await error(
                400,
                "InvalidRequestContentException",
                "Client context must be a valid Base64-encoded JSON object.",
            )
            return
    log_type = headers.get(b"x-amz-log-type", b"None")
    if log_type not in LOG_TYPES:
        await error(
            400,
            "InvalidParameterValueException",
            "X-Amz-Log-Type must be one of None, Tail",
        )
        return
    tail = log_type == b"Tail"
    captured: list[Entry] | None = [] if tail else None
    token = log_capture.set(captured) if tail else None
    sink = (
        InvokeStream(send, receive, runtime.router.stream_bandwidth_cap, request_id)
        if streaming
        else None
    )
    try:
        outcome = await runtime.invoke_outcome(
            name, payload, client_context=client_context, stream=sink
        )
    except (InvalidRequestContent, PayloadTooLarge) as exc:
        await error(_STATUS[type(exc)], exc.error_type, str(exc))
        return
    finally:
        if token is not None:
            log_capture.reset(token)
    if outcome.status is Status.THROTTLED:
        await error(429, "TooManyRequestsException", "Rate Exceeded.", Reason=outcome.reason)
        return
    if outcome.status is Status.RECURSIVE:
        assert outcome.error is not None
        await error(400, "RecursiveInvocationException", str(outcome.error["errorMessage"]))
        return
    log_result = None
    if captured is not None:
        lines = tail_lines(
            captured,
            outcome.request_id,
            runtime.router.functions[name].settings.log_format,
            outcome.error,
            outcome.status is Status.TIMEOUT,
        )
        log_result = base64.b64encode(tail_bytes(lines, LOG_TAIL_BYTES))
    if sink is not None:
        await _complete_stream(sink, outcome, log_result)
        return
    response_headers = [
        (b"content-type", b"application/json"),
        (b"x-amzn-requestid", outcome.request_id.encode()),
        (b"x-amz-executed-version", LATEST.encode()),
    ]
    if outcome.status is not Status.SUCCESS:
        response_headers.append((b"x-amz-function-error", b"Unhandled"))
    if log_result is not None:
        response_headers.append((b"x-amz-log-result", log_result))
    await respond(send, 200, outcome.response or b"null", response_headers)


async def _complete_stream(sink: InvokeStream, outcome: Outcome, log_result: bytes | None) -> None:
    """End an ``InvokeWithResponseStream`` answer: a result that was not streamed goes as one
    ``PayloadChunk``; ``InvokeComplete`` carries the error, if any, and the log tail."""
    if sink.aborted:
        return
    if not sink.started:
        await sink.start(b"application/json")
        if outcome.status is Status.SUCCESS:
            await sink.piece(outcome.response or b"null")
    error = outcome.error
    await sink.complete(
        invoke_complete(
            None if error is None else str(error["errorType"]),
            None if error is None else str(error["errorMessage"]),
            None if log_result is None else log_result.decode(),
        )
    )
