"""Envelopes and Lambda's event shapes: request ids, ARNs, error bodies, invocation records."""

from __future__ import annotations

import itertools
import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, overload

import msgspec

Condition = Literal["Success", "RetriesExhausted", "EventAgeExceeded"]

REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
ACCOUNT = "000000000000"
LATEST = "$LATEST"

_encoder = msgspec.json.Encoder()


class HttpRequestContext(msgspec.Struct, omit_defaults=True):
    """``requestContext`` of API Gateway's HTTP API 2.0 event.

    ``authorizer`` is present for ``AWS_IAM`` routes when permissions are enforced (the
    caller's ``iam`` identity) and for ``API_KEY`` routes (``lambda``: the principal).
    """

    accountId: str
    apiId: str
    domainName: str
    domainPrefix: str
    #: ``method``, ``path``, ``protocol``, ``sourceIp``, ``userAgent``.
    http: dict[str, str]
    requestId: str
    routeKey: str
    stage: str
    time: str
    timeEpoch: int
    authorizer: dict[str, Any] | None = None
    authentication: dict[str, Any] | None = None


class HttpEvent(msgspec.Struct, omit_defaults=True):
    """API Gateway's HTTP API payload 2.0, as a Lambda handler receives it."""

    version: str
    routeKey: str
    rawPath: str
    rawQueryString: str
    headers: dict[str, str]
    requestContext: HttpRequestContext
    isBase64Encoded: bool
    cookies: list[str] | None = None
    queryStringParameters: dict[str, str] | None = None
    pathParameters: dict[str, str] | None = None
    stageVariables: dict[str, str] | None = None
    body: str | None = None


def function_arn(name: str) -> str:
    """The ARN-like id of a function: ``arn:aws:lambda:<region>:000000000000:function:<name>``."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


class RequestIds:
    """UUID-shaped request ids: a random per-process prefix and a counter.

    About ten times cheaper than ``uuid.uuid4()`` and still unique across processes
    (61 random bits in the prefix).
    """

    def __init__(self) -> None:
        r = os.urandom(8).hex()
        self._prefix = f"{r[:8]}-{r[8:12]}-4{r[12:15]}-{'89ab'[int(r[15], 16) % 4]}"
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        n = next(self._counter)
        return f"{self._prefix}{(n >> 48) & 0xFFF:03x}-{n & 0xFFFFFFFFFFFF:012x}"


new_request_id = RequestIds()


def iso_now() -> str:
    """Now in UTC as ``2019-11-14T18:16:05.568Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Lambda's error types for what the runtime, not the handler, refused.
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
MARSHAL_ERROR = "Runtime.MarshalError"
OUT_OF_MEMORY = "Runtime.OutOfMemory"


def response_too_large(request_id: str, size: int) -> dict[str, Any]:
    """Lambda's error document for a result over the 6 MB synchronous payload limit."""
    from eventrouter.config import SYNC_PAYLOAD_LIMIT

    return {
        "errorMessage": f"Response payload size ({size} bytes) "
        f"exceeded maximum allowed payload size ({SYNC_PAYLOAD_LIMIT} bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
        "requestId": request_id,
        "stackTrace": [],
    }


def error_body(
    exc: BaseException, request_id: str, error_type: str | None = None
) -> dict[str, Any]:
    """Lambda's error document for an exception raised by a handler."""
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose __str__ raises still gets reported
        message = f"<unprintable {type(exc).__name__}>"
    return {
        "errorMessage": message,
        "errorType": error_type or type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_exception(exc)[1:][-32:],
    }


def invocation_record(
    *,
    request_id: str,
    function_name: str,
    condition: Condition,
    invoke_count: int,
    request_payload: bytes,
    response_payload: bytes | None,
    function_error: bool,
    status_code: int = 200,
) -> bytes:
    """The record Lambda sends to an ``on_success`` / ``on_failure`` destination.

    Payloads are spliced in as raw JSON, never decoded and re-encoded.
    """
    response_context: dict[str, Any] = {"statusCode": status_code, "executedVersion": LATEST}
    if function_error:
        response_context["functionError"] = "Unhandled"
    record = {
        "version": "1.0",
        "timestamp": iso_now(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn(function_name)}:{LATEST}",
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": msgspec.Raw(request_payload),
        "responseContext": response_context,
        "responsePayload": msgspec.Raw(response_payload if response_payload else b"null"),
    }
    return _encoder.encode(record)


_decoder = msgspec.json.Decoder()


def failed_item_ids(response: bytes | None, known: set[str]) -> set[str]:
    """The ids a partial batch response lists as failed (queue sources).

    ``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}]}``: an empty or missing list
    (or no object at all) means full success; an unknown id or a malformed entry means the
    whole batch failed.
    """
    if response is None or response == b"null":
        return set()
    try:
        body = _decoder.decode(response)
    except msgspec.DecodeError:
        return set(known)
    if not isinstance(body, dict):
        return set()
    items = body.get("batchItemFailures")
    if not items:
        return set()
    failed: set[str] = set()
    for item in items if isinstance(items, list) else [None]:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in known:
            return set(known)
        failed.add(ident)
    return failed


T = TypeVar("T")


class LazyList(Sequence[T]):
    """A read-only list whose items are built when read (``ctx.records``: most handlers
    never look at the metadata of most records)."""

    def __init__(self, length: int, item: Callable[[int], T]) -> None:
        self._length = length
        self._item = item

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return [self._item(k) for k in range(*i.indices(self._length))]
        if i < 0:
            i += self._length
        if not 0 <= i < self._length:
            raise IndexError(i)
        return self._item(i)

    def __iter__(self) -> Iterator[T]:
        return (self._item(k) for k in range(self._length))
