"""The inside of a Python execution environment:
``python -m eventrouter.runtime.environments.worker FD``.

The router starts one such process per environment of an ``isolation="process"`` function and
talks to it over the socket ``FD`` (messages in :mod:`eventrouter.runtime.environments.frames`). The
process imports the handler's module and runs the init hook once (the Init phase), then
serves one invocation at a time until the router stops it. Timeouts, the memory limit and
crashes are the router's business: it kills and replaces the process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import importlib.util
import inspect
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from eventrouter.context import LambdaFields, client_context_of, log_stream_name
from eventrouter.observability.function_logs import (
    Invocation,
    capturing_output,
    current_invocation,
)
from eventrouter.outcomes import (
    OUT_OF_MEMORY,
    UNMARSHAL_ERROR,
    error_body,
    marshal_error,
)
from eventrouter.runtime.environments.environment import vmhwm_kb
from eventrouter.runtime.environments.frames import (
    HEADER,
    Call,
    FromWorker,
    InitFailed,
    Invoke,
    Ready,
    Reply,
    Result,
    Start,
    ToWorker,
    frame,
    trace_header,
)
from eventrouter.runtime.environments.per_record import each, each_async


def resolve(module_name: str, file: str | None, qualname: str) -> Any:
    """The object ``qualname`` of module ``module_name`` (a script is loaded from ``file``)."""
    if module_name == "__main__":
        if file is None:
            raise ImportError("the handler is defined in __main__, which has no file to import")
        spec = importlib.util.spec_from_file_location("__eventrouter_main__", file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {file}")
        module: Any = importlib.util.module_from_spec(spec)
        sys.modules["__eventrouter_main__"] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    target = module
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


class WorkerContext(LambdaFields):
    """The context of an invocation inside an environment: Lambda's names, as inline."""

    __slots__ = (
        "_w3c",
        "_worker",
        "attempt",
        "aws_request_id",
        "client_context",
        "deadline_ms",
        "index",
        "invoked_function_arn",
        "log_stream_name",
        "memory_limit_in_mb",
        "trace_id",
    )

    http = None
    records = None
    record = None
    messages = None

    def __init__(self, worker: Worker, invoke: Invoke) -> None:
        self._worker = worker
        self.invoked_function_arn = worker.arn
        self.memory_limit_in_mb = str(worker.memory_mb)
        self.log_stream_name = worker.log_stream
        self.aws_request_id = invoke.request_id
        self.deadline_ms = invoke.deadline_ms
        self.attempt = invoke.attempt
        self.client_context, self._w3c = client_context_of(invoke.client_context)
        self.index = 0
        self.trace_id = invoke.trace

    @property
    def function_name(self) -> str:
        return self._worker.function

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out (never negative)."""
        return max(0, self.deadline_ms - int(time.time() * 1000))

    async def invoke(self, function_name: str, payload: Any = None) -> Any:
        """Invoke another function synchronously (through the router) and return its result."""
        return await self._worker.call("invoke", function_name, payload)

    async def invoke_async(self, function_name: str, payload: Any = None) -> str:
        """Queue an asynchronous invocation of another function; returns its request id."""
        result: str = await self._worker.call("invoke_async", function_name, payload)
        return result

    async def send(self, destination: Any, payload: Any) -> None:
        raise NotImplementedError(
            "ctx.send is not available with isolation='process': return the result and "
            "route it with on_success, or invoke a function that sends it"
        )


class Worker:
    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock
        self.encoder = msgspec.msgpack.Encoder()
        self.decoder = msgspec.msgpack.Decoder(ToWorker)
        self.json = msgspec.json.Encoder()
        self.function = ""
        self.arn = ""
        self.memory_mb = 128
        self.log_stream = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME") or log_stream_name()
        self.handler: Callable[..., Any] = lambda event: None
        self.is_async = False
        self.takes_context = False
        self.decoders: dict[str, msgspec.json.Decoder[Any]] = {}
        self.writer: asyncio.StreamWriter | None = None
        self.calls: dict[int, asyncio.Future[Reply]] = {}
        self._output = contextlib.ExitStack()
        self.next_call = 0

    def send(self, message: FromWorker) -> None:
        assert self.writer is not None
        self.writer.write(frame(self.encoder, message))

    async def serve(self, first: FromWorker | None = None) -> None:
        """Serve invocations; ``first``: what a restored environment says before (its
        Ready, or why its restore failed), having had no Start to answer."""
        reader, self.writer = await asyncio.open_connection(sock=self.sock)
        invocations: asyncio.Queue[Invoke] = asyncio.Queue()
        if isinstance(first, InitFailed):
            await self.fail_init(first.error)
        elif first is not None:
            self.send(first)

        async def read() -> None:
            while True:
                try:
                    header = await reader.readexactly(HEADER)
                    message = self.decoder.decode(
                        await reader.readexactly(int.from_bytes(header, "big"))
                    )
                except asyncio.IncompleteReadError:
                    os._exit(0)  # the router went away
                if isinstance(message, Invoke):
                    invocations.put_nowait(message)
                elif isinstance(message, Reply):
                    future = self.calls.pop(message.id, None)
                    if future is not None and not future.done():
                        future.set_result(message)
                else:
                    await self.init(message)

        reading = asyncio.create_task(read())
        while True:
            invoke = await invocations.get()
            result = await self.run(invoke)
            flush_output()  # what the invocation wrote reaches the router before its result
            self.send(result)
            await self.writer.drain()
            if result.retire:
                reading.cancel()
                os._exit(1)

    async def init(self, start: Start) -> None:
        """The Init phase: import the handler's module, run the init hook, say Ready."""
        began = time.monotonic()
        value, error = self.load(start)
        if error is None and inspect.isawaitable(value):
            try:
                await value
            except BaseException as exc:  # noqa: BLE001 - an init failure fails the invocation
                error = error_body(exc, "")
        if error is not None:
            await self.fail_init(error)
            return
        flush_output()
        self.send(Ready((time.monotonic() - began) * 1000))

    def load(self, start: Start) -> tuple[Any, dict[str, Any] | None]:
        """The Init phase up to the init hook's call: what the hook returned (an awaitable
        for an async hook), or Lambda's error document."""
        from eventrouter.arns import function_arn
        from eventrouter.observability.logging import configure_logging

        configure_logging("json")
        self._output.enter_context(capturing_output())
        self.function = start.function
        self.arn = function_arn(start.function)
        self.memory_mb = start.memory_mb
        sys.path[:0] = [path for path in start.sys_path if path not in sys.path]
        try:
            handler = resolve(start.module, start.file, start.qualname)
        except BaseException as exc:  # noqa: BLE001 - reported as Lambda reports it
            return None, error_body(exc, "", "Runtime.ImportModuleError")
        try:
            self.prepare(handler, start.function)
            if start.init_module is not None and start.init_qualname is not None:
                return resolve(start.init_module, None, start.init_qualname)(), None
        except BaseException as exc:  # noqa: BLE001 - an init failure fails the invocation
            return None, error_body(exc, "")
        return None, None

    def prepare(self, handler: Callable[..., Any], name: str) -> None:
        """Read the handler's signature as the router does: its decoders and context."""
        from eventrouter.signature import decoder_for, handler_form, payload_type

        tp, self.takes_context, _ = payload_type(handler, name)
        self.handler = handler
        self.is_async = inspect.iscoroutinefunction(handler)
        decoder = decoder_for(tp, name)  # a direct invocation's payload and a source's event
        self.decoders = {"direct": decoder, "event": decoder}
        form, item = handler_form(tp)
        if form == "record":
            self.decoders["per_record"] = msgspec.json.Decoder(list[item])  # type: ignore[valid-type]

    async def fail_init(self, error: dict[str, Any]) -> None:
        from eventrouter.observability.logging import flush_logs

        self.send(InitFailed(error))
        assert self.writer is not None
        await self.writer.drain()
        flush_logs()
        os._exit(1)

    async def call(self, op: Any, function: str, payload: Any) -> Any:
        import eventrouter.errors as errors

        self.next_call += 1
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.calls[self.next_call] = future
        data = payload if isinstance(payload, bytes) else self.json.encode(payload)
        self.send(Call(self.next_call, op, function, data))
        reply = await future
        if reply.error_class is not None:
            cls = getattr(errors, reply.error_class, errors.InvokeError)
            if issubclass(cls, errors.FunctionError):
                raise cls(reply.error)
            if issubclass(cls, errors.Throttled):
                raise cls("Rate Exceeded.", str(reply.error))
            raise cls(str(reply.error))
        if op == "invoke_async":
            return msgspec.json.decode(reply.body or b'""')
        return msgspec.json.decode(reply.body or b"null")

    async def run(self, invoke: Invoke) -> Result:
        request_id = invoke.request_id
        try:
            event = self.decoders[invoke.mode].decode(invoke.payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return Result(error=error_body(exc, request_id, UNMARSHAL_ERROR), max_rss_kb=max_rss())
        ctx = WorkerContext(self, invoke)
        args = (ctx,) if self.takes_context else ()
        invocation = Invocation(request_id, self.function)
        token = current_invocation.set(invocation)
        # One invocation at a time in an environment: Lambda's variable is safe to set.
        os.environ["_X_AMZN_TRACE_ID"] = trace_header(invoke)
        try:
            return await self._call(invoke, event, ctx, args)
        finally:
            current_invocation.reset(token)
            invocation.finish()

    async def _call(
        self, invoke: Invoke, event: Any, ctx: WorkerContext, args: tuple[Any, ...]
    ) -> Result:
        request_id = invoke.request_id
        try:
            if invoke.mode == "per_record":
                if self.is_async:
                    await each_async(self.handler, event, ctx, self.takes_context)
                else:
                    each(self.handler, event, ctx, self.takes_context)
                value = None
            else:
                value = self.handler(event, *args)
                if self.is_async:
                    value = await value
        except MemoryError as exc:
            error = error_body(exc, request_id, OUT_OF_MEMORY)
            return Result(error=error, failed_index=ctx.index, max_rss_kb=max_rss(), retire=True)
        except BaseException as exc:  # noqa: BLE001 - every handler failure is a function error
            return Result(
                error=error_body(exc, request_id), failed_index=ctx.index, max_rss_kb=max_rss()
            )
        try:
            body = self.json.encode(lambda_shape(value))
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
            error = marshal_error(exc, request_id)
            return Result(error=error, max_rss_kb=max_rss())
        return Result(body=body, max_rss_kb=max_rss())


def flush_output() -> None:
    from eventrouter.observability.logging import flush_logs

    flush_logs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def lambda_shape(value: Any) -> Any:
    """A ``Response`` becomes the Lambda proxy result it stands for; anything else is as is."""
    from eventrouter.response import Response

    if isinstance(value, Response):
        return {
            "statusCode": value.status,
            "headers": value.headers,
            "body": base64.b64encode(value.body).decode(),
            "isBase64Encoded": True,
        }
    return value


class PeakMemory:
    """This process's peak resident memory (KiB), read without reopening ``/proc``.

    Not ``getrusage``'s ``ru_maxrss``: that survives ``exec`` and so starts at the router's
    own peak, which a forked child inherits.
    """

    def __init__(self) -> None:
        self._fd = os.open("/proc/self/status", os.O_RDONLY)

    def __call__(self) -> int:
        return vmhwm_kb(os.pread(self._fd, 8192, 0))


max_rss = PeakMemory()


def run_loop(main: Any) -> None:
    """Run ``main`` (a coroutine) on uvloop when it is installed."""
    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    run(main)


def main() -> None:
    fd = int(sys.argv[1])
    os.set_inheritable(fd, False)  # a subprocess of the handler must not hold the channel open
    run_loop(Worker(socket.socket(fileno=fd)).serve())


if __name__ == "__main__":
    main()
