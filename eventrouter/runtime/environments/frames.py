"""The messages between the router and a Python execution environment (``isolation="process"``).

Each message is a 4-byte big-endian length followed by a MessagePack document encoded by
msgspec; user data (events, results) travels as JSON bytes inside it. Nothing is pickled.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class Start(msgspec.Struct, tag=True):
    """First message to a new environment: what to import and run."""

    function: str
    module: str
    file: str | None
    qualname: str
    init_module: str | None
    init_qualname: str | None
    sys_path: list[str]
    memory_mb: int


class Ready(msgspec.Struct, tag=True):
    """The Init phase is over: the handler is imported and the init hook has run."""

    init_ms: float


class InitFailed(msgspec.Struct, tag=True):
    error: dict[str, Any]


#: How the environment decodes ``Invoke.payload``: as a direct invocation's payload, as the
#: event the source built, or as a list to hand to the handler one item at a time.
Mode = Literal["direct", "event", "per_record"]


class Invoke(msgspec.Struct, tag=True):
    request_id: str
    #: When the invocation times out, in milliseconds since the epoch.
    deadline_ms: int
    payload: bytes
    mode: Mode = "event"
    attempt: int = 1
    client_context: Any = None
    #: The invocation's trace in X-Ray's form (``_X_AMZN_TRACE_ID``), while tracing.
    trace: str | None = None


class Result(msgspec.Struct, tag=True):
    """The end of an invocation: the JSON result, or Lambda's error document."""

    body: bytes | None = None
    error: dict[str, Any] | None = None
    failed_index: int = 0
    #: Peak resident memory of the environment so far (KiB).
    max_rss_kb: int = 0
    #: The environment cannot serve again (out of memory): replace it.
    retire: bool = False


class Call(msgspec.Struct, tag=True):
    """A handler's ``ctx.invoke`` / ``ctx.invoke_async``, served by the router."""

    id: int
    op: Literal["invoke", "invoke_async"]
    function: str
    payload: bytes


class Reply(msgspec.Struct, tag=True):
    id: int
    body: bytes | None = None
    #: ``FunctionError``, ``FunctionTimeout``, ``Throttled``, ``AccessDenied``, ...
    error_class: str | None = None
    error: Any = None


ToWorker = Start | Invoke | Reply
FromWorker = Ready | InitFailed | Result | Call

HEADER = 4


def frame(encoder: msgspec.msgpack.Encoder, message: Any) -> bytes:
    body = encoder.encode(message)
    return len(body).to_bytes(HEADER, "big") + body


def trace_header(invoke: Invoke) -> str:
    """The X-Ray trace header of an invocation (``_X_AMZN_TRACE_ID``,
    ``Lambda-Runtime-Trace-Id``): its trace while tracing, else one derived from the request
    id, not sampled (Lambda gives every invocation one)."""
    if invoke.trace is not None:
        return invoke.trace
    digits = invoke.request_id.replace("-", "")
    return f"Root=1-{digits[:8]}-{digits[8:32]};Sampled=0"
