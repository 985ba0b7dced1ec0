"""SnapStart (``snapstart=True``): environments forked from an initialised template.

A ``Template`` is one process per function (:mod:`eventrouter.runtime.environments.template`) that
imported the handler's module and ran its init once. A ``RestoredEnvironment`` is a fork of
it: the router makes the new environment's channel (a socket pair) and output pipes, hands
their far ends to the template (``SCM_RIGHTS``) and gets the child's pid back; from then on
the child is watched (its pidfd), timed out, memory-limited and killed as any environment.
Its cold start is a restore: REPORT shows ``Restore Duration`` instead of ``Init Duration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Iterator
from typing import IO, Protocol

import msgspec

from eventrouter.runtime.environments.environment import (
    EnvironmentGone,
    InitError,
    Pool,
    PythonEnvironment,
)
from eventrouter.runtime.environments.frames import (
    HEADER,
    FromWorker,
    InitFailed,
    Ready,
    Start,
    frame,
)


class SnapPool(Pool, Protocol):
    """What a SnapStart environment asks of its pool, besides what every one does."""

    #: The function's template, once started.
    template: Template | None

    async def snapshot(self) -> Template: ...


class Template(PythonEnvironment):
    """The process restored environments are forked from (not an environment itself: it
    serves no invocation and is not in the pool's environments)."""

    def __init__(self, pool: SnapPool, start: Start) -> None:
        super().__init__(pool, start)
        self.pool: SnapPool = pool
        self._control: socket.socket | None = None
        self._lock = asyncio.Lock()
        #: Reads of the control socket under way: the template's exit may be seen before its
        #: last message (an init refused) is read, and closing the socket then would lose it.
        self._receiving = 0
        self._exited = False

    async def start(self) -> float:
        """Spawn the template and wait for its init (and ``before_snapshot`` hooks)."""
        began = time.monotonic()
        ours = self.spawn_python("eventrouter.runtime.environments.template")
        ours.setblocking(False)
        self._control = ours
        loop = asyncio.get_running_loop()
        with self._talking():
            await loop.sock_sendall(ours, frame(self.pool.encoder, self._start))
            header = await self._receive(HEADER)
            message = msgspec.msgpack.decode(
                await self._receive(int.from_bytes(header, "big")), type=FromWorker
            )
        if isinstance(message, InitFailed):
            raise InitError(message.error)
        if not isinstance(message, Ready):
            raise EnvironmentGone(f"unexpected message from the template: {message!r}")
        return time.monotonic() - began

    async def fork(self) -> tuple[int, IO[bytes], IO[bytes], socket.socket]:
        """A new environment forked from the template: its pid, stdout, stderr, channel."""
        assert self._control is not None
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ours, theirs = socket.socketpair()
        try:
            async with self._lock:  # one fork at a time: answers come back in order
                if self._exited:
                    raise EnvironmentGone("the snapstart template exited")
                with self._talking():
                    self._control.setblocking(True)  # one byte and three descriptors: no wait
                    try:
                        socket.send_fds(self._control, [b"F"], [theirs.fileno(), out_w, err_w])
                    finally:
                        self._control.setblocking(False)
                    pid = int.from_bytes(await self._receive(4), "big")
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(out_w)
            os.close(err_w)
        return pid, os.fdopen(out_r, "rb", buffering=0), os.fdopen(err_r, "rb", buffering=0), ours

    async def _receive(self, size: int) -> bytes:
        assert self._control is not None
        loop = asyncio.get_running_loop()
        data = b""
        while len(data) < size:
            chunk = await loop.sock_recv(self._control, size - len(data))
            if not chunk:
                raise EnvironmentGone("the snapstart template exited")
            data += chunk
        return data

    @contextlib.contextmanager
    def _talking(self) -> Iterator[None]:
        """An exchange on the control socket: the socket stays open until it is over."""
        self._receiving += 1
        try:
            yield
        finally:
            self._receiving -= 1
            if self._exited and not self._receiving and self._control is not None:
                self._control.close()

    def closed(self) -> None:
        super().closed()
        self._exited = True
        if self._control is not None and not self._receiving:
            self._control.close()
        if self.pool.template is self:
            self.pool.template = None


class RestoredEnvironment(PythonEnvironment):
    """An environment forked from its function's template."""

    pool: SnapPool

    async def start(self) -> float:
        """Fork from the template (made first if there is none) and wait for the
        ``after_restore`` hooks; returns the restore duration (s)."""
        began = time.monotonic()
        template = await self.pool.snapshot()
        pid, stdout, stderr, channel = await template.fork()
        self.attach(pid, stdout, stderr)
        reader, self._writer = await asyncio.open_connection(sock=channel)
        self._reading = asyncio.get_running_loop().create_task(self._read(reader))
        await self.ready
        return time.monotonic() - began
