"""Lambda's outcome rules, written once: pure functions, no I/O, no clock of their own.

- What an invocation came to (:class:`Status`, :class:`Outcome`) and Lambda's error
  documents for what the runtime, not the handler, decided.
- The one ``batchItemFailures`` parser (:func:`failed_items`) for every batch model.
- The record an ``on_success`` / ``on_failure`` destination receives
  (:func:`invocation_record`), with a stream batch's info when there is one.
- What happens next: :func:`async_next` (asynchronous invocation and embedded queues:
  retry, throttle backoff, maximum event age), :func:`stream_next` (stream batches: retries,
  maximum record age) and :func:`delivery_retry` (a destination that failed to take a record).

The models call these with the time they read; the unit tests call them with any time.
"""

from __future__ import annotations

import concurrent.futures
import enum
import os
import traceback
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal

import msgspec

from eventrouter.arns import LATEST, function_arn
from eventrouter.backoff import backoff
from eventrouter.config import SYNC_PAYLOAD_LIMIT, FunctionSettings
from eventrouter.errors import FunctionError, FunctionTimeout, RecursiveInvocation, Throttled
from eventrouter.events import iso_now

Condition = Literal[
    "Success",
    "RetriesExhausted",
    "EventAgeExceeded",
    "RecursiveInvocationDetected",
    "RecordAgeExceeded",
    "RetryAttemptsExhausted",
    "InvalidPayload",
]

#: How an event or a stream batch stopped as a recursive loop ends (eventrouter's name:
#: Lambda documents none): to on_failure, neither retried nor split.
RECURSION_CONDITION: Condition = "RecursiveInvocationDetected"

#: Lambda's error types for what the runtime, not the handler, refused or ended.
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
MARSHAL_ERROR = "Runtime.MarshalError"
OUT_OF_MEMORY = "Runtime.OutOfMemory"
TIMEOUT_ERROR = "Sandbox.Timedout"
BATCH_ITEM_FAILURE = "BatchItemFailure"
THROTTLED_ERROR = "TooManyRequestsException"

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class Status(enum.Enum):
    SUCCESS = "success"
    FUNCTION_ERROR = "error"
    TIMEOUT = "timeout"
    THROTTLED = "throttled"
    INVALID_PAYLOAD = "invalid"
    #: Stopped before running: a recursive loop (``eventrouter/lineage.py``).
    RECURSIVE = "recursive"


class Outcome:
    """What one invocation came to.

    ``response`` is the encoded result on success and the encoded Lambda error body
    otherwise (``None`` when throttled).
    """

    __slots__ = (
        "error",
        "failed_index",
        "reason",
        "request_id",
        "response",
        "status",
        "trace",
        "value",
    )

    def __init__(
        self,
        status: Status,
        request_id: str,
        response: bytes | None = None,
        error: dict[str, Any] | None = None,
        reason: str | None = None,
        value: Any = None,
    ) -> None:
        self.status = status
        #: With per-record invocation: the index of the item that failed.
        self.failed_index = 0
        #: The handler's return value, unencoded, when the invocation asked for it.
        self.value = value
        self.request_id = request_id
        self.response = response
        self.error = error
        self.reason = reason
        #: The invocation's span (a ``traceparent``) while tracing: its records continue it.
        self.trace: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.SUCCESS

    def __repr__(self) -> str:
        error = self.error["errorType"] if self.error else None
        return f"Outcome({self.status.name}, {self.request_id!r}, error={error})"

    def for_item(self, request_id: str) -> Outcome:
        """The same outcome, as seen by one event of a batch invocation."""
        return Outcome(self.status, request_id, self.response, self.error, self.reason)


def result_of(outcome: Outcome) -> Any:
    """The decoded result of an outcome, or the exception it stands for
    (``FunctionError``, ``FunctionTimeout``, ``Throttled``)."""
    status = outcome.status
    if status is Status.SUCCESS:
        assert outcome.response is not None
        return _decoder.decode(outcome.response)
    if status is Status.THROTTLED:
        raise Throttled("Rate Exceeded.", outcome.reason or "")
    assert outcome.error is not None
    if status is Status.RECURSIVE:
        raise RecursiveInvocation(str(outcome.error["errorMessage"]))
    if status is Status.TIMEOUT:
        raise FunctionTimeout(outcome.error)
    raise FunctionError(outcome.error)


def failed(status: Status, request_id: str, error: dict[str, Any]) -> Outcome:
    """A failed outcome carrying ``error`` both decoded and encoded."""
    return Outcome(status, request_id, _encoder.encode(error), error)


# -- error documents ---------------------------------------------------------------------------


def error_document(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    """Lambda's error document for an error the runtime decided (no stack trace)."""
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": [],
    }


def recursion_error(function: str, request_id: str, depth: int) -> dict[str, Any]:
    """The error of an invocation stopped as a recursive loop (``eventrouter/lineage.py``)."""
    from eventrouter.lineage import LIMIT

    message = (
        f"Function {function} was invoked {depth} deep in one chain of invocations (more "
        f"than {LIMIT}): stopped as a recursive loop (recursive_loop='Allow' permits it)"
    )
    return error_document("RecursiveInvocationException", message, request_id)


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
        "stackTrace": user_frames(exc),
    }


#: Frames of these folders are the runtime's, not the user's: Lambda's runtime leaves its
#: own out of a stack trace, and so does eventrouter (its package, the thread pool). A
#: compiled module names its frames by the relative path it was compiled from.
_RUNTIME_FOLDERS = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    "eventrouter" + os.sep,
    os.path.dirname(os.path.abspath(concurrent.futures.__file__)) + os.sep,
)


def user_frames(exc: BaseException, limit: int = 32) -> list[str]:
    """The formatted traceback of ``exc`` without eventrouter's frames (its last ``limit``
    lines, the exception line included, as Lambda's ``stackTrace``)."""
    summary = traceback.TracebackException.from_exception(exc)
    summary.stack = traceback.StackSummary.from_list(
        [f for f in summary.stack if not f.filename.startswith(_RUNTIME_FOLDERS)]
    )
    return list(summary.format())[1:][-limit:]


def marshal_error(exc: BaseException, request_id: str) -> dict[str, Any]:
    """A handler result that cannot be encoded as JSON."""
    error = error_body(exc, request_id, MARSHAL_ERROR)
    error["errorMessage"] = f"Unable to marshal response: {error['errorMessage']}"
    return error


def timeout_error(request_id: str, timeout: float) -> dict[str, Any]:
    return error_document(
        TIMEOUT_ERROR, f"{request_id} Task timed out after {timeout:.2f} seconds", request_id
    )


def init_timeout_error(request_id: str, timeout: float) -> dict[str, Any]:
    return error_document(TIMEOUT_ERROR, f"Init timed out after {timeout:.2f} seconds", request_id)


def unmarshal_error(request_id: str, exc: Exception) -> dict[str, Any]:
    """A payload that does not decode into what the handler asks for."""
    return error_document(UNMARSHAL_ERROR, str(exc), request_id)


def response_too_large(request_id: str, size: int) -> dict[str, Any]:
    """Lambda's error document for a result over the 6 MB synchronous payload limit."""
    return error_document(
        "Function.ResponseSizeTooLarge",
        f"Response payload size ({size} bytes) "
        f"exceeded maximum allowed payload size ({SYNC_PAYLOAD_LIMIT} bytes).",
        request_id,
    )


def batch_item_failure(request_id: str) -> Outcome:
    """The outcome of an item a successful batch invocation listed in ``batchItemFailures``."""
    error = error_document(BATCH_ITEM_FAILURE, "reported in batchItemFailures", request_id)
    return failed(Status.FUNCTION_ERROR, request_id, error)


def throttled_response(reason: str | None) -> bytes:
    """The response payload of a destination record for an event that ended throttled."""
    return _encoder.encode(
        {"errorMessage": "Rate Exceeded.", "errorType": THROTTLED_ERROR, "Reason": reason}
    )


# -- partial batch responses -------------------------------------------------------------------


def failed_items(
    response: bytes | None,
    identifiers: Sequence[Hashable],
    key: Callable[[Any], Hashable] = lambda ident: ident,
) -> list[int]:
    """The indices (ascending) of the items a partial batch response lists as failed.

    ``response`` is the handler's encoded result; ``identifiers[i]`` is item *i*'s
    identifier, and ``key`` turns an ``itemIdentifier`` as the handler wrote it into one
    (a message id for queues, ``(partition, offset)`` for streams). An empty or missing
    ``batchItemFailures`` list, or a result that is not an object, means every item
    succeeded; a malformed entry or an unknown identifier means the whole batch failed.
    """
    if response is None or response == b"null":
        return []
    everything = list(range(len(identifiers)))
    try:
        body = _decoder.decode(response)
    except msgspec.DecodeError:
        return everything
    if not isinstance(body, dict):
        return []
    entries = body.get("batchItemFailures")
    if not entries:
        return []
    index = {ident: i for i, ident in enumerate(identifiers)}
    found: set[int] = set()
    for entry in entries if isinstance(entries, list) else [None]:
        ident = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        try:
            i = index.get(key(ident)) if ident is not None else None
        except (TypeError, AttributeError):  # an identifier of the wrong shape
            i = None
        if i is None:
            return everything
        found.add(i)
    return sorted(found)


# -- destination records -----------------------------------------------------------------------


def invocation_record(
    *,
    request_id: str,
    function_name: str,
    condition: Condition,
    invoke_count: int,
    request_payload: bytes | None,
    response_payload: bytes | None,
    function_error: bool,
    status_code: int = 200,
    batch_info: tuple[str, dict[str, Any]] | None = None,
) -> bytes:
    """The record Lambda sends to an ``on_success`` / ``on_failure`` destination.

    Payloads are spliced in as raw JSON, never decoded and re-encoded. A stream's failure
    record has no ``requestPayload`` but its batch info (``("KafkaBatchInfo", {...})``).
    """
    response_context: dict[str, Any] = {"statusCode": status_code, "executedVersion": LATEST}
    if function_error:
        response_context["functionError"] = "Unhandled"
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": iso_now(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn(function_name)}:{LATEST}",
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
    }
    if request_payload is not None:
        record["requestPayload"] = msgspec.Raw(request_payload)
    record["responseContext"] = response_context
    record["responsePayload"] = msgspec.Raw(response_payload if response_payload else b"null")
    if batch_info is not None:
        record[batch_info[0]] = batch_info[1]
    return _encoder.encode(record)


# -- what happens next -------------------------------------------------------------------------

#: The throttle backoff of asynchronous invocation: 1 s doubling to 5 min.
THROTTLE_BACKOFF = (1.0, 300.0)
#: The wait between deliveries of a record its destination did not take: 1 s doubling to
#: 5 min (an asynchronous event stops at its maximum age; a stream batch never does, since
#: the checkpoint may not pass records whose failure record is not out).
DELIVERY_BACKOFF = (1.0, 300.0)


def throttle_backoff(n: int) -> float:
    """1 s, 2 s, 4 s ... up to 5 min for the ``n``-th throttle (1-based)."""
    return backoff(n, *THROTTLE_BACKOFF)


def delivery_retry(deliveries: int) -> float:
    """The wait before delivering a record again after ``deliveries`` failed deliveries."""
    return backoff(deliveries, *DELIVERY_BACKOFF)


class Next(msgspec.Struct, frozen=True):
    """The decision after an asynchronous invocation: ``final`` with its ``condition`` (the
    record goes to a destination and the event leaves the queue), or again at ``due``."""

    condition: Condition | None
    attempts: int
    throttles: int
    due: float = 0.0

    @property
    def final(self) -> bool:
        return self.condition is not None


def too_old(enqueued_at: float, now: float, settings: FunctionSettings) -> bool:
    """Whether an asynchronous event is past its maximum age and must not be invoked."""
    return now - enqueued_at > settings.max_event_age


def async_next(
    status: Status,
    *,
    attempts: int,
    throttles: int,
    enqueued_at: float,
    now: float,
    settings: FunctionSettings,
) -> Next:
    """Lambda's asynchronous rules (lambda-semantics.md §1) for an event that was invoked
    ``attempts`` times before this invocation ended in ``status``.

    A function error or timeout is retried ``max_retries`` times after ``retry_delays``; a
    throttle is not a retry (only the throttle count grows, backing off 1 s to 5 min); a
    payload that does not validate is not retried; a retry that would start after the
    event's maximum age ends it with ``EventAgeExceeded``.
    """
    if status is Status.SUCCESS:
        return Next("Success", attempts, throttles)
    if status is Status.THROTTLED:
        throttles += 1
        due = now + throttle_backoff(throttles)
    elif status is Status.INVALID_PAYLOAD:
        return Next("RetriesExhausted", attempts + 1, throttles)
    elif status is Status.RECURSIVE:  # not run, never retried
        return Next(RECURSION_CONDITION, attempts, throttles)
    else:
        attempts += 1
        if attempts > settings.max_retries:
            return Next("RetriesExhausted", attempts, throttles)
        due = now + settings.retry_delay(attempts)
    if too_old(enqueued_at, due, settings):  # it would start past its maximum age
        return Next("EventAgeExceeded", attempts, throttles)
    return Next(None, attempts, throttles, due)


def stream_next(
    attempts: int,
    *,
    oldest: float,
    now: float,
    max_retries: int,
    max_record_age: float,
    retry_backoff: tuple[float, float],
) -> Condition | float:
    """Lambda's stream rules (lambda-semantics.md §2) after a batch failed its
    ``attempts``-th retry-counted invocation: the condition that ends it
    (``RecordAgeExceeded`` / ``RetryAttemptsExhausted``, ``-1`` disabling either) or the
    seconds to wait before trying again. ``oldest`` is the first record's time (epoch s)."""
    if max_record_age != -1 and now - oldest > max_record_age:
        return "RecordAgeExceeded"
    if max_retries != -1 and attempts > max_retries:
        return "RetryAttemptsExhausted"
    return backoff(attempts, *retry_backoff)
