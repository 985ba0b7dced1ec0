"""The inside of a SnapStart template: ``python -m eventrouter.runtime.environments.template FD``.

The router starts one per ``snapstart=True`` function. It imports the handler's module and
runs the init hook once (an async hook in a loop of its own, closed afterwards), refuses to be
snapshotted if that left threads or sockets behind (a ``fork`` copies neither usefully), runs
the ``before_snapshot`` hooks and says Ready. Then it forks a restored environment for each
request of the router: a request carries the new environment's channel and its stdout and
stderr (``SCM_RIGHTS``); the child takes them, runs the ``after_restore`` hooks and serves
invocations as any environment (:mod:`eventrouter.runtime.environments.worker`); the template
answers the child's pid. No event loop runs in the template while it forks.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

import msgspec

import eventrouter.snapstart as snapstart
from eventrouter.outcomes import error_body, error_document
from eventrouter.runtime.environments import worker as worker_module
from eventrouter.runtime.environments.frames import (
    HEADER,
    InitFailed,
    Ready,
    Start,
    ToWorker,
    frame,
)
from eventrouter.runtime.environments.worker import Worker, flush_output, run_loop

SNAPSTART_ERROR = "SnapStartException"


def main() -> None:
    fd = int(sys.argv[1])
    os.set_inheritable(fd, False)
    control = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # restored environments are reaped at once
    encoder = msgspec.msgpack.Encoder()
    start = _read_start(control)
    began = time.monotonic()
    worker = Worker(None)
    value, error = worker.load(start)
    if error is None and inspect.isawaitable(value):
        try:
            asyncio.run(_awaited(value))  # the loop is closed again before any snapshot
        except BaseException as exc:  # noqa: BLE001 - an init failure fails the invocation
            error = error_body(exc, "")
    if error is None:
        error = refusal(fd)
    if error is None:
        _preload()
    if error is None:
        error = _run_hooks(snapstart.before_snapshot_hooks(), "before_snapshot")
    flush_output()
    if error is not None:
        control.sendall(frame(encoder, InitFailed(error)))
        os._exit(1)
    control.sendall(frame(encoder, Ready((time.monotonic() - began) * 1000)))
    _serve_forks(control, worker)


def _preload() -> None:
    """Import now what every restored environment imports on its way to its first result
    (its event loop, what shapes and reports results): in the snapshot, not in each fork."""
    import eventrouter.errors
    import eventrouter.response  # noqa: F401 - lambda_shape's, imported on first use

    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401 - only imported: no loop runs in the template


async def _awaited(value: Any) -> None:
    await value


def refusal(control_fd: int) -> dict[str, Any] | None:
    """Why this process cannot be snapshotted now, as Lambda's error document, or ``None``."""
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        return error_document(
            SNAPSTART_ERROR,
            f"snapstart: init left threads running ({', '.join(threads)}); a restored "
            "environment is a fork, which copies only the main thread: start them in an "
            "after_restore hook",
            "",
        )
    sockets = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd == control_fd:
            continue
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed since
        if target.startswith("socket:"):
            sockets.append(fd)
    if sockets:
        return error_document(
            SNAPSTART_ERROR,
            f"snapstart: init left {len(sockets)} socket(s) open (fd {', '.join(map(str, sockets))}"
            "); every restored environment would share the connection: close it in a "
            "before_snapshot hook and open it in an after_restore hook "
            "(eventrouter.snapstart)",
            "",
        )
    return None


def _run_hooks(hooks: list[Any], phase: str) -> dict[str, Any] | None:
    for hook in hooks:
        try:
            value = hook()
            if inspect.isawaitable(value):
                asyncio.run(_awaited(value))
        except BaseException as exc:  # noqa: BLE001 - reported as the environment's init error
            error = error_body(exc, "", SNAPSTART_ERROR)
            error["errorMessage"] = f"{phase} hook {hook!r} failed: {error['errorMessage']}"
            return error
    return None


def _read_start(control: socket.socket) -> Start:
    header = _exactly(control, HEADER)
    message = msgspec.msgpack.decode(
        _exactly(control, int.from_bytes(header, "big")), type=ToWorker
    )
    if not isinstance(message, Start):
        os._exit(2)
    return message


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            os._exit(0)  # the router went away
        data += chunk
    return data


def _serve_forks(control: socket.socket, worker: Worker) -> None:
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 16, 3)
        except OSError:
            os._exit(0)
        if not message:
            os._exit(0)  # the router went away
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue
        flush_output()  # nothing buffered is written twice
        pid = os.fork()
        if pid == 0:
            control.close()
            _restored(worker, fds)
        for fd in fds:
            os.close(fd)
        control.sendall(pid.to_bytes(4, "big"))


def _restored(worker: Worker, fds: list[int]) -> None:
    """In the child: become an environment on the channel and outputs the router sent."""
    began = time.monotonic()
    channel, stdout, stderr = fds
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()  # its own process group: a kill takes its children too
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    os.close(stdout)
    os.close(stderr)
    os.set_inheritable(channel, False)
    worker_module.max_rss = worker_module.PeakMemory()  # /proc/self is this process now
    error = _run_hooks(snapstart.after_restore_hooks(), "after_restore")
    worker.sock = socket.socket(fileno=channel)
    restored_ms = (time.monotonic() - began) * 1000
    first = InitFailed(error) if error is not None else Ready(restored_ms)
    try:
        run_loop(worker.serve(first))
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
