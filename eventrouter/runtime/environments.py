"""Execution environments: functions run in their own processes (``isolation="process"``).

An environment is one process that runs a function's Init phase once and then serves one
invocation at a time while it stays warm. A :class:`Pool` per function keeps the warm ones,
starts a new one (a cold start) when none is free, so it grows with demand up to the
function's concurrency, and shuts down those idle for longer than ``idle_timeout``.

The router enforces what inline mode cannot: an invocation that overruns its timeout gets
its process group killed (CPU-bound code that never yields is stopped too); a process whose
resident memory passes ``memory_mb`` is killed and the invocation fails with
``Runtime.OutOfMemory``; a process that dies fails only the invocation it was running. The
killed environment is replaced by the next cold start.

Two kinds of process: a Python worker (:mod:`eventrouter.runtime.worker`, messages over a
socket pair) for ``@on_event(..., isolation="process")``, and any command speaking Lambda's
Runtime API (:mod:`eventrouter.runtime.runtime_api`) for ``router.external(...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from eventrouter.config import INIT_TIMEOUT
from eventrouter.context import log_stream_name
from eventrouter.errors import ConfigError
from eventrouter.events import OUT_OF_MEMORY, REGION
from eventrouter.observability.function_logs import Entry, log_capture, relay
from eventrouter.runtime.frames import (
    HEADER,
    Call,
    FromWorker,
    InitFailed,
    Invoke,
    Ready,
    Reply,
    Result,
    Start,
    frame,
)

if TYPE_CHECKING:
    from eventrouter.router import FunctionSpec
    from eventrouter.runtime.engine import Engine

log = structlog.get_logger("eventrouter")

#: How long a stopping environment gets between SIGTERM and SIGKILL (seconds).
SHUTDOWN_GRACE = 0.5
#: How often the resident memory of a busy environment is sampled (seconds).
WATCH_INTERVAL = 0.01

EXIT_ERROR = "Runtime.ExitError"
INIT_TIMEOUT_ERROR = "Sandbox.Timedout"

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_SIGNALS = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
}


def tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (KiB)."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm", "rb") as f:
                total += int(f.read().split()[1]) * _PAGE_KB
            with open(f"/proc/{current}/task/{current}/children", "rb") as f:
                stack.extend(int(child) for child in f.read().split())
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return total


def vmhwm_kb(status: bytes) -> int:
    """The peak resident memory (``VmHWM``, KiB) in the text of ``/proc/PID/status``, or 0."""
    start = status.find(b"VmHWM:")
    if start < 0:
        return 0
    return int(status[start + 6 : status.index(b"kB", start)])


def peak_rss_kb(pid: int) -> int:
    """Peak resident memory of process ``pid`` (KiB), 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            return vmhwm_kb(f.read())
    except (OSError, ValueError):
        return 0


def exit_description(returncode: int | None) -> str:
    if returncode is None:
        return "unknown"
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
        except ValueError:
            return f"signal: {-returncode}"
        return f"signal: {_SIGNALS.get(sig, sig.name)}"
    return f"exit status {returncode}"


class EnvironmentGone(Exception):
    """The environment's process ended while it was needed."""


class InitError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("errorMessage"))
        self.error = error


class Run:
    """What :meth:`Pool.invoke` came to."""

    __slots__ = ("duration", "init_duration", "max_memory_mb", "result", "timed_out")

    def __init__(
        self,
        result: Result,
        duration: float = 0.0,
        init_duration: float | None = None,
        max_memory_mb: int | None = None,
        timed_out: bool = False,
    ) -> None:
        self.result = result
        #: Seconds of the Invoke phase (the Init phase of a cold start excluded).
        self.duration = duration
        self.init_duration = init_duration
        self.max_memory_mb = max_memory_mb
        self.timed_out = timed_out


class Output:
    """One output pipe of an environment's process, and its line not ended yet."""

    __slots__ = ("partial", "pipe", "stream")

    def __init__(self, stream: str, pipe: Any) -> None:
        self.stream = stream
        self.pipe = pipe
        self.partial = b""


class Environment:
    """One process serving one invocation at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        #: Why the router killed it ("timeout", "oom", "shutdown"), if it did.
        self.killed: str | None = None
        self.ready: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        #: The invocation in flight and its answer to come.
        self.current: Invoke | None = None
        self.result: asyncio.Future[Result] | None = None
        self.exited = asyncio.Event()
        self.max_rss_kb = 0
        self.idle_timer: asyncio.TimerHandle | None = None
        self.watch: asyncio.TimerHandle | None = None
        self._pidfd = -1
        self._outputs: dict[int, Output] = {}
        #: The Invoke API's log capture of the invocation in flight, if it asked for one.
        self.capture: list[Entry] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.returncode is None and self.killed is None

    def spawn(
        self, argv: list[str], env: dict[str, str], cwd: str | None, fds: tuple[int, ...] = ()
    ) -> None:
        self.process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a kill takes its children too
        )
        loop = asyncio.get_running_loop()
        self._pidfd = os.pidfd_open(self.process.pid)
        loop.add_reader(self._pidfd, self._on_exit)
        for name, pipe in (("stdout", self.process.stdout), ("stderr", self.process.stderr)):
            assert pipe is not None
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            self._outputs[fd] = Output(name, pipe)
            loop.add_reader(fd, self.read_output, fd)

    def read_output(self, fd: int) -> None:
        """Read what the process wrote to ``fd``; each line belongs to the invocation in
        flight (or to the Init phase, before the first)."""
        output = self._outputs.get(fd)
        if output is None:
            return
        request_id = self.current.request_id if self.current is not None else None
        name = self.pool.spec.name
        while True:
            try:
                chunk = os.read(fd, 65_536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:  # the process closed it
                asyncio.get_running_loop().remove_reader(fd)
                del self._outputs[fd]
                if output.partial:
                    relay(name, request_id, output.stream, output.partial, self.capture)
                output.pipe.close()
                return
            *lines, output.partial = (output.partial + chunk).split(b"\n")
            for line in lines:
                relay(name, request_id, output.stream, line, self.capture)

    def drain_output(self) -> None:
        """Read what is already written: an invocation's last lines before its result."""
        for fd in list(self._outputs):
            self.read_output(fd)

    def _on_exit(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        assert self.process is not None
        self.returncode = self.process.wait()
        self.drain_output()
        gone = EnvironmentGone(exit_description(self.returncode))
        if not self.ready.done():
            self.ready.set_exception(gone)
            self.ready.exception()  # retrieved: nobody may be waiting any more
        if self.result is not None and not self.result.done():
            self.result.set_exception(gone)
        self.closed()
        self.exited.set()
        self.pool.discard(self)

    def closed(self) -> None:
        """Release what the environment held in the router (its process has ended)."""

    def kill(self, reason: str) -> None:
        """Kill the process group at once; the invocation in flight fails with ``reason``."""
        if self.killed is None:
            self.killed = reason
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.returncode is None and self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """The Shutdown phase: SIGTERM, ``grace`` seconds to exit, then SIGKILL."""
        if self.killed is None:
            self.killed = "shutdown"
        if self.process is None:
            return
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.exited.wait(), grace)
        except TimeoutError:
            self._signal(signal.SIGKILL)
            await self.exited.wait()

    async def start(self) -> float:
        """Start the process and wait for its Init phase; returns the init duration (s)."""
        raise NotImplementedError

    async def invoke(self, invoke: Invoke) -> Result:
        """Hand ``invoke`` to the process and wait for its result."""
        self.result = asyncio.get_running_loop().create_future()
        self.current = invoke
        self.capture = log_capture.get()
        self.deliver(invoke)
        try:
            return await self.result
        finally:
            self.drain_output()
            self.current = self.result = None
            self.capture = None

    def deliver(self, invoke: Invoke) -> None:
        """Pass the invocation to the process (its transport's part of :meth:`invoke`)."""
        raise NotImplementedError

    def peak_rss_kb(self) -> int:
        return peak_rss_kb(self.pid)


class PythonEnvironment(Environment):
    """A Python worker process (``python -m eventrouter.runtime.worker``)."""

    def __init__(self, pool: Pool, start: Start) -> None:
        super().__init__(pool)
        self._start = start
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None

    async def start(self) -> float:
        began = time.monotonic()
        ours, theirs = socket.socketpair()
        try:
            self.spawn(
                [sys.executable, "-m", "eventrouter.runtime.worker", str(theirs.fileno())],
                self.pool.environ(),
                None,
                (theirs.fileno(),),
            )
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_connection(sock=ours)
        self._reading = asyncio.get_running_loop().create_task(self._read(reader))
        self._writer.write(frame(self.pool.encoder, self._start))
        await self.ready
        return time.monotonic() - began

    async def _read(self, reader: asyncio.StreamReader) -> None:
        decoder = msgspec.msgpack.Decoder(FromWorker)
        while True:
            try:
                header = await reader.readexactly(HEADER)
                message = decoder.decode(await reader.readexactly(int.from_bytes(header, "big")))
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the process is ending: its exit is noticed through its pidfd
            if isinstance(message, Result):
                if self.result is not None and not self.result.done():
                    self.result.set_result(message)
            elif isinstance(message, Call):
                asyncio.get_running_loop().create_task(self._serve_call(message))
            elif isinstance(message, Ready):
                if not self.ready.done():
                    self.ready.set_result(message.init_ms / 1000)
            elif isinstance(message, InitFailed) and not self.ready.done():
                self.ready.set_exception(InitError(message.error))

    async def _serve_call(self, call: Call) -> None:
        reply = await self.pool.serve_call(call)
        if self._writer is not None and self.alive:
            self._writer.write(frame(self.pool.encoder, reply))

    def deliver(self, invoke: Invoke) -> None:
        assert self._writer is not None
        self._writer.write(frame(self.pool.encoder, invoke))

    def peak_rss_kb(self) -> int:
        return 0  # the worker reports its own peak with every result

    def closed(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        if self._writer is not None:
            self._writer.close()


class Pool:
    """The execution environments of one function."""

    def __init__(self, engine: Engine, spec: FunctionSpec) -> None:
        self.engine = engine
        self.spec = spec
        self.idle: list[Environment] = []
        self.environments: set[Environment] = set()
        self.encoder = msgspec.msgpack.Encoder()
        self.memory_kb = spec.settings.memory_mb * 1024
        self.idle_timeout = spec.settings.idle_timeout
        self._changed = asyncio.Event()
        self._closing = False
        self._start: Start | None = None
        if spec.command is None:
            self._start = self._python_start(spec)

    # -- configuration -----------------------------------------------------------------------

    @staticmethod
    def _python_start(spec: FunctionSpec) -> Start:
        """What a Python environment imports; refused now if it could not import it."""
        module, qualname = importable(spec.handler, spec.name, "handler")
        init_module = init_qualname = None
        if spec.init is not None:
            init_module, init_qualname = importable(spec.init, spec.name, "init hook")
        main = sys.modules.get(module)
        return Start(
            function=spec.name,
            module=module,
            file=getattr(main, "__file__", None),
            qualname=qualname,
            init_module=init_module,
            init_qualname=init_qualname,
            sys_path=[os.path.abspath(p) if p else os.getcwd() for p in sys.path],
            memory_mb=spec.settings.memory_mb,
        )

    def environ(self) -> dict[str, str]:
        """The environment variables of a new process, with Lambda's names."""
        spec = self.spec
        env = dict(os.environ)
        env.update(
            AWS_LAMBDA_FUNCTION_NAME=spec.name,
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(spec.settings.memory_mb),
            AWS_LAMBDA_FUNCTION_TIMEOUT=str(int(spec.settings.timeout)),
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{spec.name}",
            AWS_LAMBDA_LOG_STREAM_NAME=log_stream_name(),
            PYTHONUNBUFFERED="1",  # a line printed before the result is read with it
            AWS_EXECUTION_ENV="eventrouter",
        )
        env.update(spec.environment)
        return env

    # -- serving -----------------------------------------------------------------------------

    async def invoke(self, invoke: Invoke, limit: float) -> Run:
        """Run one invocation in a warm environment, or in a new one (a cold start).

        A crash, the memory limit or a failed init come back as Lambda's error document in
        the result; a timeout as ``timed_out``.
        """
        init_duration: float | None = None
        if self.idle:
            env = self.idle.pop()
            if env.idle_timer is not None:
                env.idle_timer.cancel()
        else:
            env = self._new()
            try:
                init_duration = await asyncio.wait_for(env.start(), INIT_TIMEOUT)
            except (InitError, EnvironmentGone, TimeoutError, OSError) as exc:
                return Run(self._init_failed(env, exc, invoke.request_id))
        loop = asyncio.get_running_loop()
        began = time.monotonic()
        invoke.deadline_ms = int((time.time() + limit) * 1000)
        timer = loop.call_later(limit, env.kill, "timeout")
        env.watch = loop.call_later(WATCH_INTERVAL, self._watch, env)
        try:
            result = await env.invoke(invoke)
        except EnvironmentGone as exc:
            result = self._gone(env, str(exc), invoke.request_id)
        finally:
            timer.cancel()
            env.watch.cancel()
        run = Run(result, time.monotonic() - began, init_duration)
        if env.killed == "timeout":
            run.timed_out = True
        elif env.alive:
            peak = max(result.max_rss_kb, env.peak_rss_kb())
            env.max_rss_kb = max(env.max_rss_kb, peak)
            if peak > self.memory_kb:
                env.kill("oom")
                run.result = self._gone(env, "signal: killed", invoke.request_id)
            elif result.retire:
                env.kill("retired")
            else:
                self._release(env)
        run.max_memory_mb = -(-env.max_rss_kb // 1024) if env.max_rss_kb else None
        return run

    def _new(self) -> Environment:
        if self.spec.command is not None:
            from eventrouter.runtime.runtime_api import RuntimeApiEnvironment

            env: Environment = RuntimeApiEnvironment(self, self.spec.command, self.spec.cwd)
        else:
            assert self._start is not None
            env = PythonEnvironment(self, self._start)
        self.environments.add(env)
        self._changed_now()
        return env

    def _release(self, env: Environment) -> None:
        if self._closing:
            env.kill("shutdown")
            return
        env.idle_timer = asyncio.get_running_loop().call_later(self.idle_timeout, self._expire, env)
        self.idle.append(env)

    def _expire(self, env: Environment) -> None:
        """Shut down an environment idle for ``idle_timeout`` (the Shutdown phase)."""
        if env in self.idle:
            self.idle.remove(env)
            log.debug("environment idle, shutting down", function=self.spec.name, pid=env.pid)
            asyncio.get_running_loop().create_task(env.stop())

    def _watch(self, env: Environment) -> None:
        """Sample a busy environment's memory; kill it past the limit."""
        if env.result is None or not env.alive:
            return
        rss = tree_rss_kb(env.pid)
        if rss > env.max_rss_kb:
            env.max_rss_kb = rss
        if rss > self.memory_kb:
            env.kill("oom")
        else:
            env.watch = asyncio.get_running_loop().call_later(WATCH_INTERVAL, self._watch, env)

    def _gone(self, env: Environment, how: str, request_id: str) -> Result:
        """The error of an invocation whose environment ended under it."""
        oom = env.killed == "oom"
        if oom:
            log.warning(
                "environment out of memory",
                function=self.spec.name,
                pid=env.pid,
                memory_mb=self.spec.settings.memory_mb,
                max_rss_mb=env.max_rss_kb // 1024,
            )
        elif env.killed is None:
            log.error(
                "environment exited",
                function=self.spec.name,
                pid=env.pid,
                exit=how,
                request_id=request_id,
            )
        return Result(
            error={
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
                + ("signal: killed" if oom else how),
                "errorType": OUT_OF_MEMORY if oom else EXIT_ERROR,
                "requestId": request_id,
                "stackTrace": [],
            }
        )

    def _init_failed(self, env: Environment, exc: BaseException, request_id: str) -> Result:
        if isinstance(exc, InitError):
            error = dict(exc.error)
        elif isinstance(exc, TimeoutError):
            error = {
                "errorMessage": f"Init timed out after {INIT_TIMEOUT:.2f} seconds",
                "errorType": INIT_TIMEOUT_ERROR,
            }
        else:
            error = {
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {exc}",
                "errorType": EXIT_ERROR
                if isinstance(exc, EnvironmentGone)
                else "Runtime.StartError",
            }
        error.update(requestId=request_id, stackTrace=error.get("stackTrace") or [])
        log.error("init failed", function=self.spec.name, request_id=request_id, error=error)
        if env.process is None:  # it never started: nothing will report its exit
            env.closed()
            self.discard(env)
        else:
            env.kill("init")
        return Result(error=error)

    def discard(self, env: Environment) -> None:
        """Forget an environment whose process has ended."""
        self.environments.discard(env)
        if env in self.idle:
            self.idle.remove(env)
        if env.idle_timer is not None:
            env.idle_timer.cancel()
        self._changed_now()

    async def serve_call(self, call: Call) -> Reply:
        """A handler's ``ctx.invoke`` / ``ctx.invoke_async``, checked against its role."""
        from eventrouter.errors import EventRouterError, FunctionError, Throttled

        engine = self.engine
        try:
            engine.guard.check_invoke_from(self.spec, call.function)
            if call.op == "invoke_async":
                request_id = await engine.invoke_async(call.function, call.payload)
                return Reply(call.id, body=msgspec.json.encode(request_id))
            outcome = await engine.invoke_outcome(call.function, call.payload)
            engine.result(outcome)  # raises what the outcome stands for
            return Reply(call.id, body=outcome.response)
        except FunctionError as exc:
            return Reply(call.id, error_class=type(exc).__name__, error=exc.body)
        except Throttled as exc:
            return Reply(call.id, error_class="Throttled", error=exc.reason)
        except EventRouterError as exc:
            return Reply(call.id, error_class=type(exc).__name__, error=str(exc))

    # -- observing and stopping ----------------------------------------------------------------

    def _changed_now(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[Pool], bool]) -> None:
        """Wait until ``predicate(pool)`` holds (tests: idle shutdown, replacement)."""
        while not predicate(self):
            await self._changed.wait()

    @property
    def pids(self) -> list[int]:
        return sorted(env.pid for env in self.environments if env.process is not None)

    async def close(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop every environment (SIGTERM, ``grace``, SIGKILL) and wait for them to exit."""
        self._closing = True
        envs = list(self.environments)
        self.idle.clear()
        await asyncio.gather(*(env.stop(grace) for env in envs), return_exceptions=True)


def importable(target: Any, function: str, what: str) -> tuple[str, str]:
    """The module and qualified name a worker process imports ``target`` by."""
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        raise ConfigError(
            f"function {function!r}: isolation='process' imports the {what} in a new process, "
            f"so it must be a module-level function (it is {target!r})"
        )
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not target:
        raise ConfigError(
            f"function {function!r}: the {what} {module}.{qualname} is not what that name "
            "refers to in its module (decorated after registration?); isolation='process' "
            "needs to import it by name"
        )
    return module, qualname
