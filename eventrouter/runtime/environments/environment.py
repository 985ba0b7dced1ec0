"""One execution environment: a process running a function's Init once, then one
invocation at a time (``isolation="process"``).

:class:`Environment` holds what every kind of process shares (spawning in its own process
group, relaying its output, memory readings, stopping); :class:`PythonEnvironment` speaks to
eventrouter's Python worker (:mod:`eventrouter.runtime.environments.worker`) over a socket pair.
The Runtime API kind is :mod:`eventrouter.runtime.environments.runtime_api`. The
:class:`Pool` of a function (:mod:`eventrouter.runtime.environments.pool`) starts, reuses
and replaces them.
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
from typing import IO, TYPE_CHECKING, Any, Protocol

import msgspec
import structlog

from eventrouter.lineage import DEPTH
from eventrouter.observability import tracing
from eventrouter.observability.function_logs import Entry, log_capture, relay
from eventrouter.runtime.environments.frames import (
    HEADER,
    Call,
    FromWorker,
    InitFailed,
    Invoke,
    Ready,
    Result,
    Start,
    frame,
)

if TYPE_CHECKING:
    import msgspec

    from eventrouter.contract.spec import FunctionSpec
    from eventrouter.runtime.environments.frames import Call, Reply

log = structlog.get_logger("eventrouter")


class Pool(Protocol):
    """What an environment asks of the pool it belongs to
    (:class:`eventrouter.runtime.environments.pool.Pool`)."""

    spec: FunctionSpec
    encoder: msgspec.msgpack.Encoder

    def environ(self) -> dict[str, str]: ...

    def discard(self, env: Environment) -> None: ...

    async def serve_call(self, call: Call) -> Reply: ...


#: How long a stopping environment gets between SIGTERM and SIGKILL (seconds).
SHUTDOWN_GRACE = 0.5
#: How often the resident memory of a busy environment is sampled (seconds).
WATCH_INTERVAL = 0.01

EXIT_ERROR = "Runtime.ExitError"

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

    __slots__ = (
        "duration",
        "init_duration",
        "max_memory_mb",
        "restore_duration",
        "result",
        "timed_out",
    )

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
        #: A cold start of a SnapStart function: seconds to fork and restore, instead.
        self.restore_duration: float | None = None
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
        self._pid: int | None = None
        self._outputs: dict[int, Output] = {}
        #: The Invoke API's log capture of the invocation in flight, if it asked for one.
        self.capture: list[Entry] | None = None
        #: The depth of the invocation in flight (``eventrouter/lineage.py``).
        self.depth = 0
        #: Provisioned concurrency: kept warm, never shut down for idleness.
        self.provisioned = False

    @property
    def pid(self) -> int:
        assert self._pid is not None
        return self._pid

    @property
    def started(self) -> bool:
        """Whether a process exists (or existed) for this environment."""
        return self._pid is not None

    @property
    def alive(self) -> bool:
        return self.returncode is None and self.killed is None and not self.exited.is_set()

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
        assert self.process.stdout is not None and self.process.stderr is not None
        self.attach(self.process.pid, self.process.stdout, self.process.stderr)

    def attach(self, pid: int, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        """Watch process ``pid`` (its exit through a pidfd, which works for a process that
        is not the router's child too) and relay what it writes to ``stdout``/``stderr``."""
        self._pid = pid
        loop = asyncio.get_running_loop()
        self._pidfd = os.pidfd_open(pid)
        loop.add_reader(self._pidfd, self._on_exit)
        for name, pipe in (("stdout", stdout), ("stderr", stderr)):
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
        # A restored (forked) environment is its template's child: its status is not ours.
        self.returncode = self.process.wait() if self.process is not None else None
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
        if self.returncode is None and self._pid is not None and not self.exited.is_set():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pid, sig)

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """The Shutdown phase: SIGTERM, ``grace`` seconds to exit, then SIGKILL."""
        if self.killed is None:
            self.killed = "shutdown"
        if self._pid is None:
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
    """A Python worker process (``python -m eventrouter.runtime.environments.worker``)."""

    def __init__(self, pool: Pool, start: Start) -> None:
        super().__init__(pool)
        self._start = start
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None

    async def start(self) -> float:
        began = time.monotonic()
        ours = self.spawn_python("eventrouter.runtime.environments.worker")
        reader, self._writer = await asyncio.open_connection(sock=ours)
        self._reading = asyncio.get_running_loop().create_task(self._read(reader))
        self._writer.write(frame(self.pool.encoder, self._start))
        await self.ready
        return time.monotonic() - began

    def spawn_python(self, module: str) -> socket.socket:
        """Start ``python -m module FD`` with the function's environment; the router's end of
        the socket pair whose other end is ``FD``."""
        ours, theirs = socket.socketpair()
        try:
            self.spawn(
                [sys.executable, "-m", module, str(theirs.fileno())],
                self.pool.environ(),
                None,
                (theirs.fileno(),),
            )
        finally:
            theirs.close()
        return ours

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
        trace = self.current.trace if self.current is not None else None
        DEPTH.set(self.depth)  # this task's own context: the call's invocation is its caller
        with tracing.continuing_xray(trace):  # the call belongs to the running invocation
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
