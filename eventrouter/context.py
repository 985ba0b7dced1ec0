"""The context object handed to a handler as its optional second argument."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from eventrouter.arns import LATEST, function_arn

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec
    from eventrouter.runtime.ports import CallerPort


class CognitoIdentity:
    """``context.identity``: the Amazon Cognito identity of the caller (none here: both
    fields are ``None``, as in Lambda for callers without one)."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(
        self, cognito_identity_id: str | None = None, cognito_identity_pool_id: str | None = None
    ) -> None:
        self.cognito_identity_id = cognito_identity_id
        self.cognito_identity_pool_id = cognito_identity_pool_id

    def __repr__(self) -> str:
        return (
            f"CognitoIdentity(cognito_identity_id={self.cognito_identity_id!r}, "
            f"cognito_identity_pool_id={self.cognito_identity_pool_id!r})"
        )


class Client:
    """``context.client_context.client``: the calling application, as a mobile SDK sends it."""

    __slots__ = (
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    )

    def __init__(self, fields: dict[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"Client({inner})"


class ClientContext:
    """``context.client_context``: the ``X-Amz-Client-Context`` of an Invoke API call, with
    ``client``, ``custom`` and ``env`` as in Lambda's Python runtime."""

    __slots__ = ("client", "custom", "env")

    def __init__(self, fields: dict[str, Any]) -> None:
        client = fields.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom: Any = fields.get("custom")
        self.env: Any = fields.get("env")

    def __repr__(self) -> str:
        return f"ClientContext(client={self.client!r}, custom={self.custom!r}, env={self.env!r})"


W3C_FIELDS = ("traceparent", "tracestate", "baggage")


def client_context_of(value: Any) -> tuple[ClientContext | None, dict[str, str]]:
    """The client context object of a decoded ``X-Amz-Client-Context``, and its W3C trace
    fields (which Lambda's runtime takes out of it and offers as ``context.w3c()``)."""
    if not isinstance(value, dict):
        return None, {}
    w3c = value.get("w3c")
    fields = {k: v for k, v in value.items() if k != "w3c"}
    trace = {}
    if isinstance(w3c, dict):
        trace = {k: w3c[k] for k in W3C_FIELDS if isinstance(w3c.get(k), str)}
    return ClientContext(fields), trace


def log_stream_name() -> str:
    """A log stream name as Lambda gives one per execution environment:
    ``2026/12/03/[$LATEST]<32 hex digits>``."""
    day = datetime.now(UTC).strftime("%Y/%m/%d")
    return f"{day}/[{LATEST}]{os.urandom(16).hex()}"


class LambdaFields:
    """What every context shares with Lambda's Python runtime (``awslambdaric``'s
    ``LambdaContext``): the names, and the types, a Lambda handler reads."""

    __slots__ = ()

    function_version = LATEST
    #: Lambda's multi-tenant functions only; always ``None`` here.
    tenant_id: str | None = None
    aws_request_id: str
    _w3c: dict[str, str] | None

    @property
    def function_name(self) -> str:
        raise NotImplementedError  # each context knows its function

    @property
    def request_id(self) -> str:
        return self.aws_request_id

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def identity(self) -> CognitoIdentity:
        return CognitoIdentity()

    def w3c(self) -> dict[str, str]:
        """The W3C trace context (``traceparent``, ``tracestate``, ``baggage``) the caller
        passed in its client context."""
        return dict(self._w3c or {})

    @property
    def log(self) -> FunctionLog:
        """A structlog logger bound to this request id and function; calling it with a
        message writes the message to the function's output, as Lambda's
        ``context.log(msg)`` does."""
        return FunctionLog(self.aws_request_id, self.function_name)


class FunctionLog:
    """``ctx.log``: structlog's methods (``ctx.log.info("charged", amount=3)``), and
    Lambda's ``context.log("text")``."""

    __slots__ = ("_bound", "_function", "_request_id")

    def __init__(self, request_id: str, function: str) -> None:
        self._request_id = request_id
        self._function = function
        self._bound: Any = None

    def __call__(self, msg: Any) -> None:
        sys.stdout.write(str(msg))

    def __getattr__(self, name: str) -> Any:
        if self._bound is None:
            self._bound = structlog.get_logger("eventrouter.function").bind(
                request_id=self._request_id, function=self._function
            )
        return getattr(self._bound, name)


class Context(LambdaFields):
    """What a handler knows about its invocation, with Lambda's names.

    >>> async def handler(event, ctx):
    ...     ctx.log.info("charging", remaining_ms=ctx.get_remaining_time_in_millis())
    ...     await ctx.invoke_async("send_receipt", event)
    """

    __slots__ = (
        "_client_context_raw",
        "_log",
        "_log_stream",
        "_runtime",
        "_spec",
        "_w3c",
        "attempt",
        "aws_request_id",
        "client_context",
        "deadline",
        "http",
        "index",
        "messages",
        "records",
        "trace_id",
    )

    def __init__(
        self,
        runtime: CallerPort,
        spec: FunctionSpec,
        request_id: str,
        deadline: float,
        attempt: int = 1,
        messages: list[str] | None = None,
        http: Any = None,
        client_context: Any = None,
        log_stream: str = "",
    ) -> None:
        self._runtime = runtime
        self._spec = spec
        self._log_stream = log_stream
        self._log: FunctionLog | None = None
        self.aws_request_id = request_id
        #: ``time.monotonic()`` at which the invocation times out.
        self.deadline = deadline
        #: 1 for the first invocation of an event, 2 and 3 for asynchronous retries.
        self.attempt = attempt
        #: The message ids of a queue batch, in the order of the handler's list.
        self.messages = messages
        #: The HTTP request (``HttpRequest``) when the function was reached by an HTTP route.
        self.http = http
        #: The ``X-Amz-Client-Context`` of an Invoke API call (``client``, ``custom``, ``env``).
        self.client_context: ClientContext | None = None
        self._w3c: dict[str, str] | None = None
        #: As the caller sent it (a process environment builds its own object from it).
        self._client_context_raw = client_context
        if client_context is not None:
            self.client_context, self._w3c = client_context_of(client_context)
        #: Stream sources: the metadata of each record of the batch (``KafkaRecord``).
        self.records: Sequence[Any] | None = None
        #: Per-record handlers: the index of the record being handled.
        self.index = 0
        #: The invocation's trace in X-Ray's form (``Root=1-...;Parent=...;Sampled=1``), as
        #: Lambda gives it in ``_X_AMZN_TRACE_ID``; ``None`` without tracing.
        self.trace_id: str | None = None

    @property
    def record(self) -> Any:
        """Stream sources, per-record handlers: the record being handled (``KafkaRecord``)."""
        return None if self.records is None else self.records[self.index]

    @property
    def function_name(self) -> str:
        return self._spec.name

    @property
    def invoked_function_arn(self) -> str:
        return function_arn(self._spec.name)

    @property
    def memory_limit_in_mb(self) -> str:
        """The function's memory size, as text (as Lambda's Python runtime gives it)."""
        return str(self._spec.settings.memory_mb)

    @property
    def log_stream_name(self) -> str:
        """The log stream of the environment: one per function and router process inline."""
        return self._log_stream

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out (never negative)."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    @property
    def log(self) -> FunctionLog:
        """A structlog logger bound to this request id and function (bound on first use);
        ``ctx.log("text")`` writes the text to the function's output, as in Lambda."""
        if self._log is None:
            self._log = FunctionLog(self.aws_request_id, self._spec.name)
        return self._log

    async def invoke(self, function_name: str, payload: Any = None) -> Any:
        """Invoke another function synchronously and return its result.

        When permissions are enforced, the function's role (or the target's resource policy)
        must allow ``lambda:InvokeFunction`` on the target: else ``AccessDenied``.
        """
        self._runtime.guard.check_invoke_from(self._spec, function_name)
        return await self._runtime.invoke(function_name, payload)

    async def send(self, destination: Any, payload: Any) -> None:
        """Send ``payload`` (JSON-encoded unless bytes) to a destination, e.g. for fan-out.

        >>> await ctx.send(to_kafka("clicks-enriched"), {"id": 1})
        """
        data = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
        await self._runtime.send(self._spec, destination, data, self.aws_request_id)

    async def invoke_async(self, function_name: str, payload: Any = None) -> str:
        """Queue an asynchronous invocation of another function; returns its request id."""
        self._runtime.guard.check_invoke_from(self._spec, function_name)
        return await self._runtime.invoke_async(function_name, payload)

    def __repr__(self) -> str:
        return (
            f"Context(function_name={self.function_name!r}, "
            f"aws_request_id={self.aws_request_id!r}, attempt={self.attempt})"
        )
