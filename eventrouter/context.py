"""The context object handed to a handler as its optional second argument."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from eventrouter.events import LATEST, function_arn

if TYPE_CHECKING:
    from eventrouter.router import FunctionSpec
    from eventrouter.runtime.engine import Engine


class Context:
    """What a handler knows about its invocation, with Lambda's names.

    >>> async def handler(event, ctx):
    ...     ctx.log.info("charging", remaining_ms=ctx.get_remaining_time_in_millis())
    ...     await ctx.invoke_async("send_receipt", event)
    """

    __slots__ = (
        "_engine",
        "_log",
        "_spec",
        "attempt",
        "aws_request_id",
        "client_context",
        "deadline",
        "http",
        "index",
        "messages",
        "records",
    )

    function_version = LATEST

    def __init__(
        self,
        engine: Engine,
        spec: FunctionSpec,
        request_id: str,
        deadline: float,
        attempt: int = 1,
        messages: list[str] | None = None,
        http: Any = None,
        client_context: Any = None,
    ) -> None:
        self._engine = engine
        self._spec = spec
        self._log: Any = None
        self.aws_request_id = request_id
        #: ``time.monotonic()`` at which the invocation times out.
        self.deadline = deadline
        #: 1 for the first invocation of an event, 2 and 3 for asynchronous retries.
        self.attempt = attempt
        #: The message ids of a queue batch, in the order of the handler's list.
        self.messages = messages
        #: The HTTP request (``HttpRequest``) when the function was reached by an HTTP route.
        self.http = http
        #: The decoded ``X-Amz-Client-Context`` of an Invoke API call, if any.
        self.client_context = client_context
        #: Stream sources: the metadata of each record of the batch (``KafkaRecord``).
        self.records: Sequence[Any] | None = None
        #: Per-record handlers: the index of the record being handled.
        self.index = 0

    @property
    def record(self) -> Any:
        """Stream sources, per-record handlers: the record being handled (``KafkaRecord``)."""
        return None if self.records is None else self.records[self.index]

    @property
    def request_id(self) -> str:
        return self.aws_request_id

    @property
    def function_name(self) -> str:
        return self._spec.name

    @property
    def invoked_function_arn(self) -> str:
        return function_arn(self._spec.name)

    @property
    def memory_limit_in_mb(self) -> int:
        return self._spec.settings.memory_mb

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out (never negative)."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    @property
    def log(self) -> Any:
        """A structlog logger bound to this request id and function (bound on first use)."""
        if self._log is None:
            self._log = structlog.get_logger("eventrouter.function").bind(
                request_id=self.aws_request_id, function=self._spec.name
            )
        return self._log

    async def invoke(self, function_name: str, payload: Any = None) -> Any:
        """Invoke another function synchronously and return its result.

        When permissions are enforced, the function's role (or the target's resource policy)
        must allow ``lambda:InvokeFunction`` on the target: else ``AccessDenied``.
        """
        self._engine.guard.check_invoke_from(self._spec, function_name)
        return await self._engine.invoke(function_name, payload)

    async def send(self, destination: Any, payload: Any) -> None:
        """Send ``payload`` (JSON-encoded unless bytes) to a destination, e.g. for fan-out.

        >>> await ctx.send(to_kafka("clicks-enriched"), {"id": 1})
        """
        data = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
        await self._engine.deliver(self._spec, destination, data, self.aws_request_id)

    async def invoke_async(self, function_name: str, payload: Any = None) -> str:
        """Queue an asynchronous invocation of another function; returns its request id."""
        self._engine.guard.check_invoke_from(self._spec, function_name)
        return await self._engine.invoke_async(function_name, payload)

    def __repr__(self) -> str:
        return (
            f"Context(function_name={self.function_name!r}, "
            f"aws_request_id={self.aws_request_id!r}, attempt={self.attempt})"
        )
