"""The invoker: the only place that calls user code.

Per invocation it takes a concurrency slot, builds the context, runs the handler under its
timeout, classifies the outcome and writes one REPORT record. The per-invocation cost is
kept to a few microseconds: counters instead of semaphores, one ``loop.call_at`` timer
instead of a cancel scope, and a buffered log sink.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from eventrouter.arns import function_arn
from eventrouter.config import SYNC_PAYLOAD_LIMIT
from eventrouter.context import Context, log_stream_name
from eventrouter.contract.spec import FunctionSpec
from eventrouter.lineage import DEPTH, LIMIT
from eventrouter.observability import tracing
from eventrouter.observability.function_logs import (
    Invocation,
    InvocationStream,
    current_invocation,
    ensure_streams,
)
from eventrouter.observability.logging import report
from eventrouter.observability.metrics import Failure, Metrics
from eventrouter.outcomes import (
    MARSHAL_ERROR,
    OUT_OF_MEMORY,
    UNMARSHAL_ERROR,
    Outcome,
    Status,
    error_body,
    failed,
    marshal_error,
    recursion_error,
    response_too_large,
    timeout_error,
    unmarshal_error,
)
from eventrouter.runtime.environments.environment import EXIT_ERROR
from eventrouter.runtime.environments.frames import Invoke, Mode
from eventrouter.runtime.environments.per_record import each, each_async
from eventrouter.runtime.environments.pool import Pool
from eventrouter.runtime.environments.warmup import init_phase
from eventrouter.services.concurrency import FunctionSlots, Slots
from eventrouter.services.deadlines import Deadline, Deadlines
from eventrouter.signature import decode_integral_floats
from eventrouter.streaming import Stream, open_stream

if TYPE_CHECKING:
    from eventrouter.runtime.ports import CallerPort

#: Sends a handler's stream to whoever asked (the HTTP route, ``InvokeWithResponseStream``).
StreamSink = Callable[[Stream], Awaitable[None]]

log = structlog.get_logger("eventrouter")
TRACEBACK_HEAD = "Traceback (most recent call last):\n"
#: Failures whose process environment logs them itself ("environment out of memory",
#: "environment exited"), with what only it knows.
_SAID_BY_THE_ENVIRONMENT = frozenset((OUT_OF_MEMORY, EXIT_ERROR))


class _Raised:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _catching(run: Callable[[Callable[[], Any]], Any], call: Callable[[], Any]) -> Any:
    try:
        return run(call)
    except BaseException as exc:  # noqa: BLE001 - raised again on the loop (Invoker._in_thread)
        return _Raised(exc)


class FunctionState:
    """Runtime state of one function: its slots and whether its environment is warm.

    An ``isolation="process"`` function has a pool of environments of its own instead.
    """

    __slots__ = (
        "deadlines",
        "init_lock",
        "log_stream",
        "pool",
        "slots",
        "span_kind",
        "spec",
        "throttle_logged",
        "throttles",
        "trace_attributes",
        "warm",
    )

    def __init__(self, spec: FunctionSpec, slots: FunctionSlots, pool: Pool | None) -> None:
        self.spec = spec
        self.slots = slots
        self.warm = False
        self.init_lock = asyncio.Lock()
        self.deadlines: Deadlines | None = None
        self.pool = pool
        #: ``context.log_stream_name`` of inline invocations (one stream per router process).
        self.log_stream = log_stream_name()
        #: While tracing: the attributes of every span of this function (made on first use)
        #: and the span's kind (a caller waits: server; a queue or stream feeds it: consumer).
        self.trace_attributes: dict[str, Any] | None = None
        model = spec.source.model if spec.source is not None else "sync"
        self.span_kind = "SERVER" if model == "sync" else "CONSUMER"
        #: Throttles since the last "throttled" line, and when that line was written.
        self.throttles = 0
        self.throttle_logged = -1.0e9


class Invoker:
    """Runs handlers for one runtime."""

    def __init__(
        self, runtime: CallerPort, slots: Slots, metrics: Metrics, thread_workers: int
    ) -> None:
        self.runtime = runtime
        self.slots = slots
        self.metrics = metrics
        self.states = {
            name: FunctionState(
                spec, slots.functions[name], Pool(runtime, spec) if spec.isolated else None
            )
            for name, spec in runtime.router.functions.items()
        }
        self.executor = ThreadPoolExecutor(thread_workers, thread_name_prefix="eventrouter-fn")
        self._encoder = msgspec.json.Encoder()
        #: Called with (function, status) after each invocation (``eventrouter.testing``).
        self.concluded: list[Callable[[str, Status], None]] = []

    def close(self) -> None:
        # Threads still running an abandoned (timed-out) handler are not waited for.
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def close_environments(self) -> None:
        """Shut down every process environment (SIGTERM, a short grace, SIGKILL)."""
        for state in self.states.values():
            if state.pool is not None:
                await state.pool.close()

    async def invoke(
        self,
        state: FunctionState,
        payload: bytes,
        request_id: str,
        attempt: int = 1,
        trace: str | None = None,
        lineage: int | None = None,
    ) -> Outcome:
        """Decode ``payload`` for the handler and invoke it."""
        if state.pool is not None:  # decoded in the environment
            event: Any = msgspec.Raw(payload)
        else:
            try:
                event = state.spec.decoder.decode(payload)
            except msgspec.ValidationError as exc:
                try:
                    event = decode_integral_floats(state.spec.decoder, payload, exc)
                except msgspec.ValidationError as final:
                    return self.invalid_payload(state, final, request_id)
            except msgspec.DecodeError as exc:
                return self.invalid_payload(state, exc, request_id)
        return await self.invoke_value(
            state, event, request_id, attempt, trace=trace, lineage=lineage
        )

    def invalid_payload(self, state: FunctionState, exc: Exception, request_id: str) -> Outcome:
        error = unmarshal_error(request_id, exc)
        self._failed(state.spec, request_id, error)
        return failed(Status.INVALID_PAYLOAD, request_id, error)

    def _failed(
        self, spec: FunctionSpec, request_id: str, error: dict[str, Any], attempt: int = 1
    ) -> None:
        """Count a failed invocation (``Errors``), keep it for the dashboard, and log it at
        ERROR with the user's frames of its traceback (Lambda's runtime prints those)."""
        self.metrics.add("Errors", spec.name)
        self.metrics.failed(
            Failure(spec.name, request_id, error["errorType"], str(error["errorMessage"]))
        )
        if error["errorType"] in _SAID_BY_THE_ENVIRONMENT:
            return  # its environment's own line said it (with its pid and memory): one line
        frames = error.get("stackTrace")
        log.error(
            "invocation failed",
            function=spec.name,
            request_id=request_id,
            attempt=attempt,
            error_type=error["errorType"],
            error_message=str(error["errorMessage"]),
            **({"traceback": "".join([TRACEBACK_HEAD, *frames])} if frames else {}),
        )

    async def invoke_value(
        self,
        state: FunctionState,
        event: Any,
        request_id: str,
        attempt: int = 1,
        messages: list[str] | None = None,
        http: Any = None,
        client_context: Any = None,
        raw_result: bool = False,
        records: Sequence[Any] | None = None,
        per_record: bool = False,
        trace: str | None = None,
        links: Sequence[str | None] | None = None,
        stream: StreamSink | None = None,
        lineage: int | None = None,
    ) -> Outcome:
        """Invoke the handler with an already decoded event.

        With ``raw_result`` a successful outcome carries the handler's return value in
        ``value`` and nothing is encoded: the HTTP layer shapes its own response. With
        ``per_record`` the event is a list and the handler is called once per item, in order,
        within one invocation; a failed outcome's ``failed_index`` says which item failed.
        While tracing, the invocation's span continues ``trace`` (else the current span) and
        links the traces of a batch's records (``links``). With ``stream``, a handler that
        returns a stream (:mod:`eventrouter.streaming`) has it drained by ``stream`` within the
        invocation (its timeout and slot); the outcome's value is then ``None``.

        ``lineage``: the depth of the invocation that made the event (``None``: a synchronous
        call, made by the invocation running in this context, if any); one deeper than
        :data:`~eventrouter.lineage.LIMIT` is stopped as a recursive loop.
        """
        spec = state.spec
        depth = (DEPTH.get() if lineage is None else lineage) + 1
        if depth > LIMIT and spec.settings.recursive_loop != "Allow":
            return self._recursive(spec, request_id, depth)
        reason = self.slots.try_acquire(state.slots)
        if reason is not None:
            self.metrics.add("Throttles", spec.name)
            self._throttled(state, reason)
            return Outcome(Status.THROTTLED, request_id, reason=reason)
        depth_token = DEPTH.set(depth)
        try:
            ctx = Context(
                self.runtime,
                spec,
                request_id,
                0.0,
                attempt,
                messages,
                http,
                client_context,
                state.log_stream,
            )
            ctx.records = records
            if tracing.TRACER is not None:
                return await self._run_traced(
                    tracing.TRACER, state, event, ctx, raw_result, per_record, trace, links, stream
                )
            outcome = await self._run(state, event, ctx, raw_result, per_record, stream)
            if per_record and outcome.status is not Status.SUCCESS:
                outcome.failed_index = ctx.index
            return outcome
        finally:
            self.slots.release(state.slots)
            DEPTH.reset(depth_token)

    def _throttled(self, state: FunctionState, reason: str) -> None:
        """One WARNING line a second per function while it is throttled (throttles come by
        the thousand under load), with how many there were since the last line."""
        state.throttles += 1
        now = time.monotonic()
        if now - state.throttle_logged >= 1.0:
            log.warning(
                "throttled",
                function=state.spec.name,
                reason=reason,
                throttles=state.throttles,
                reserved_concurrency=state.spec.settings.reserved_concurrency,
            )
            state.throttle_logged = now
            state.throttles = 0

    def _recursive(self, spec: FunctionSpec, request_id: str, depth: int) -> Outcome:
        """An invocation stopped as a recursive loop (not run, not counted as an error)."""
        self.metrics.add("RecursiveInvocationsDropped", spec.name)
        log.warning(
            "recursive loop stopped",
            function=spec.name,
            request_id=request_id,
            depth=depth,
            limit=LIMIT,
        )
        return failed(Status.RECURSIVE, request_id, recursion_error(spec.name, request_id, depth))

    async def _run_traced(
        self,
        tracer: tracing.Tracer,
        state: FunctionState,
        event: Any,
        ctx: Context,
        raw_result: bool,
        per_record: bool,
        trace: str | None,
        links: Sequence[str | None] | None,
        stream: StreamSink | None,
    ) -> Outcome:
        """:meth:`_run` inside the invocation's span."""
        if state.trace_attributes is None:
            spec = state.spec
            state.trace_attributes = tracing.invocation_attributes(
                spec.name,
                spec.settings.memory_mb,
                function_arn(spec.name),
                spec.source.trace_attributes() if spec.source is not None else {},
            )
        attributes = state.trace_attributes
        cold = not state.warm if state.pool is None else not state.pool.idle
        span, token = tracer.start(
            state.spec.name,
            {
                **attributes,
                "faas.invocation_id": ctx.aws_request_id,
                "faas.coldstart": cold,
                **({"messaging.batch.message_count": len(links)} if links else {}),
            },
            kind=state.span_kind,
            parent=trace,
            links=links or (),
        )
        outcome: Outcome | None = None
        try:
            span_context = span.get_span_context()
            own = tracing.traceparent_of(span_context)
            ctx.trace_id = tracing.xray_of(span_context)
            outcome = await self._run(state, event, ctx, raw_result, per_record, stream)
            if per_record and outcome.status is not Status.SUCCESS:
                outcome.failed_index = ctx.index
            outcome.trace = own
            return outcome
        finally:
            tracer.finish(span, token, outcome.error if outcome is not None else None)

    async def _run(
        self,
        state: FunctionState,
        event: Any,
        ctx: Context,
        raw_result: bool,
        per_record: bool = False,
        stream: StreamSink | None = None,
    ) -> Outcome:
        if state.pool is not None:
            return await self._run_isolated(state, event, ctx, raw_result, per_record)
        spec = state.spec
        request_id = ctx.aws_request_id
        init_duration = None
        if not state.warm:
            init_outcome, init_duration = await self._init(state, request_id)
            if init_outcome is not None:
                return init_outcome
        timeout = spec.settings.timeout
        deadlines = state.deadlines
        if deadlines is None:
            deadlines = state.deadlines = Deadlines(asyncio.get_running_loop())
        task = asyncio.current_task()
        assert task is not None
        start = time.monotonic()
        timer = Deadline(task, start + timeout)
        ctx.deadline = timer.at
        deadlines.add(timer)
        status = Status.SUCCESS
        error: dict[str, Any] | None = None
        response: bytes | None = None
        if not isinstance(sys.stdout, InvocationStream) or not isinstance(
            sys.stderr, InvocationStream
        ):
            ensure_streams()
        invocation = Invocation(request_id, spec.name)
        token = current_invocation.set(invocation)
        try:
            if per_record:
                await self._each(spec, event, ctx)
                value = None
            elif spec.is_async:
                if spec.takes_context:
                    value = await spec.handler(event, ctx)
                else:
                    value = await spec.handler(event)
            else:
                call = (
                    functools.partial(spec.handler, event, ctx)
                    if spec.takes_context
                    else (functools.partial(spec.handler, event))
                )
                value = await self._in_thread(call)
            if stream is not None:
                opened = open_stream(value, self.executor)
                if opened is not None:
                    await stream(opened)
                    value = None
        except asyncio.CancelledError:
            if not timer.fired:
                raise
            task.uncancel()
            status = Status.TIMEOUT
        except BaseException as exc:  # noqa: BLE001 - any handler failure is a function error
            deadlines.remove(timer)
            if timer.fired:  # the handler turned our cancellation into another exception
                task.uncancel()
                status = Status.TIMEOUT
            else:
                status = Status.FUNCTION_ERROR
                error = error_body(exc, request_id)
        else:
            if timer.fired:  # the handler swallowed the cancellation and ran on
                task.uncancel()
                status = Status.TIMEOUT
            elif raw_result:
                pass
            else:
                try:
                    response = self._encoder.encode(value)
                except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
                    status = Status.FUNCTION_ERROR
                    error = marshal_error(exc, request_id)
                else:
                    if len(response) > SYNC_PAYLOAD_LIMIT:
                        status = Status.FUNCTION_ERROR
                        error = response_too_large(request_id, len(response))
        finally:
            deadlines.remove(timer)
            current_invocation.reset(token)
            invocation.finish()
        return self._conclude(
            spec,
            request_id,
            status,
            response,
            error,
            time.monotonic() - start,
            init_duration,
            raw_result=raw_result,
            value=value if status is Status.SUCCESS else None,
            attempt=ctx.attempt,
        )

    def _conclude(
        self,
        spec: FunctionSpec,
        request_id: str,
        status: Status,
        response: bytes | None,
        error: dict[str, Any] | None,
        duration: float,
        init_duration: float | None,
        max_memory_mb: int | None = None,
        raw_result: bool = False,
        value: Any = None,
        restore_duration: float | None = None,
        attempt: int = 1,
    ) -> Outcome:
        """Write the REPORT record and build the outcome of a finished invocation.

        With ``raw_result`` a success carries the handler's ``value`` instead of encoded bytes.
        """
        raw = raw_result and status is Status.SUCCESS
        if not raw:
            if status is Status.TIMEOUT:
                error = timeout_error(request_id, spec.settings.timeout)
            if error is not None:
                response = self._encoder.encode(error)
                self._failed(spec, request_id, error, attempt)
        self._report(
            spec,
            request_id,
            duration,
            init_duration,
            status,
            error,
            max_memory_mb,
            restore_duration,
        )
        if raw:
            return Outcome(status, request_id, None, None, value=value)
        return Outcome(status, request_id, response, error)

    async def _run_isolated(
        self, state: FunctionState, event: Any, ctx: Context, raw_result: bool, per_record: bool
    ) -> Outcome:
        """Run the invocation in one of the function's process environments."""
        spec = state.spec
        request_id = ctx.aws_request_id
        if isinstance(event, msgspec.Raw):
            mode: Mode = "direct"
            payload = bytes(event)
        else:
            mode = "per_record" if per_record else "event"
            payload = self._encoder.encode(event)
        assert state.pool is not None
        run = await state.pool.invoke(
            Invoke(
                request_id, 0, payload, mode, ctx.attempt, ctx._client_context_raw, ctx.trace_id
            ),
            spec.settings.timeout,
        )
        result = run.result
        error = result.error
        response = result.body
        if run.timed_out:
            status = Status.TIMEOUT
        elif error is not None:
            kind = error.get("errorType")
            status = Status.INVALID_PAYLOAD if kind == UNMARSHAL_ERROR else Status.FUNCTION_ERROR
            ctx.index = result.failed_index
        elif response is not None and len(response) > SYNC_PAYLOAD_LIMIT:
            status = Status.FUNCTION_ERROR
            error = response_too_large(request_id, len(response))
        else:
            status = Status.SUCCESS
        value = None
        if raw_result and status is Status.SUCCESS:
            try:
                value = msgspec.json.decode(response or b"null")
            except msgspec.DecodeError as exc:
                status = Status.FUNCTION_ERROR
                error = error_body(exc, request_id, MARSHAL_ERROR)
        return self._conclude(
            spec,
            request_id,
            status,
            response,
            error,
            run.duration,
            run.init_duration,
            run.max_memory_mb,
            raw_result,
            value,
            run.restore_duration,
            ctx.attempt,
        )

    def _report(
        self,
        spec: FunctionSpec,
        request_id: str,
        duration: float,
        init_duration: float | None,
        status: Status,
        error: dict[str, Any] | None,
        max_memory_mb: int | None = None,
        restore_duration: float | None = None,
    ) -> None:
        duration_ms = duration * 1000
        billed = int(duration_ms)
        # Rounded up to the next millisecond, at least 1 ms.
        if billed < duration_ms or billed == 0:
            billed += 1
        init_ms = None if init_duration is None else round(init_duration * 1000, 2)
        self.metrics.invoked(spec.name, duration_ms, billed, init_ms)
        report(
            request_id,
            spec.name,
            status.value,
            round(duration_ms, 2),
            billed,
            spec.settings.memory_mb,
            init_ms,
            None if error is None else error["errorType"],
            None if error is None else error["errorMessage"],
            max_memory_mb,
            None if restore_duration is None else round(restore_duration * 1000, 2),
        )
        if self.concluded:
            for listener in self.concluded:
                listener(spec.name, status)

    async def _each(self, spec: FunctionSpec, items: list[Any], ctx: Context) -> None:
        """Call the handler once per item, in order; ``ctx.index`` tells how far it got."""
        if spec.is_async:
            await each_async(spec.handler, items, ctx, spec.takes_context)
            return
        # One hop to the worker thread for the whole batch.
        await self._in_thread(functools.partial(each, spec.handler, items, ctx, spec.takes_context))

    async def _in_thread(self, call: Callable[[], Any]) -> Any:
        """``call()`` on the handlers' thread pool, in a copy of this context. Its exception
        comes back as a value and is raised here: compiled code awaiting the future would
        lose the exception's traceback, the user's frames that Lambda reports."""
        value = await asyncio.get_running_loop().run_in_executor(
            self.executor, _catching, contextvars.copy_context().run, call
        )
        if type(value) is _Raised:
            raise value.exc
        return value

    async def _init(
        self, state: FunctionState, request_id: str
    ) -> tuple[Outcome | None, float | None]:
        """Run the function's init hook once (the cold start): a failed outcome, if init
        failed, and the init duration of the invocation that ran it (``None`` for
        invocations that waited for another one's init)."""
        error, duration = await init_phase(state, self.executor, request_id)
        if error is None:
            return None, duration
        self._failed(state.spec, request_id, error)
        return failed(Status.FUNCTION_ERROR, request_id, error), None
