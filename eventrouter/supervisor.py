"""``python -m eventrouter run --workers N`` and ``--reload``: a supervisor process and N
worker processes, each a whole router.

The supervisor binds the HTTP socket once; every worker inherits it (``--fd``) and accepts on
it, so the port is one and a connection waits in the backlog, never refused, while workers
come and go. The workers share the state dir: the embedded queue leases what each claims,
schedules fire once through the ledger's conditional writes, Kafka consumers join one group.
A worker tells it is ready by writing to a pipe (``EVENTROUTER_READY_FD``) once its engine
started.

- A worker that dies is started again, after 0.5 s doubling to 30 s; five deaths of one slot
  within a minute are a crash loop: reported, and the router stops (exit 1).
- SIGTERM / SIGINT: every worker drains (its own grace period), then the supervisor exits.
- SIGHUP: a rolling restart, one slot at a time: the new worker is ready before the old one
  is told to stop, so requests are served throughout and nothing acknowledged is lost.
- ``--reload``: a rolling restart whenever a Python file under the watched folders changes
  (``watchfiles``); a new worker that cannot start (a syntax error) is reported and the old
  workers keep serving until the next change.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

import structlog

log = structlog.get_logger("eventrouter.supervisor")

#: Restart backoff (seconds) and what counts as a crash loop.
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
CRASH_LOOP_DEATHS, CRASH_LOOP_WINDOW = 5, 60.0
#: How long a new worker may take to start (import, init, sources) before it counts as failed.
START_TIMEOUT = 60.0
READY_FD = "EVENTROUTER_READY_FD"
WORKER = "EVENTROUTER_WORKER"
WORKERS = "EVENTROUTER_WORKER_COUNT"


def worker_count(value: str) -> int:
    """``--workers``: a positive number, or ``auto`` (the machine's CPUs)."""
    if value == "auto":
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"--workers {value!r} must be a positive number or auto")
    return int(value)


def worker_index() -> tuple[int, int]:
    """Which worker this process is and of how many ((0, 1) without a supervisor)."""
    index, count = os.environ.get(WORKER, "0"), os.environ.get(WORKERS, "1")
    if not (index.isdigit() and count.isdigit()):
        return 0, 1
    return int(index), max(1, int(count))


def as_worker() -> None:
    """In a worker: a hang-up (a closed terminal, a signal to the process group) is the
    supervisor's to act on (a rolling restart), not a reason for a worker to die."""
    if WORKER in os.environ:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def tell_ready() -> None:
    """In a worker: tell the supervisor this worker serves (no-op without a supervisor)."""
    fd = os.environ.pop(READY_FD, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(int(fd), b"ready\n")
            os.close(int(fd))


@dataclass
class Worker:
    slot: int
    process: asyncio.subprocess.Process
    started: float = field(default_factory=time.monotonic)
    #: Told to stop by the supervisor: its exit is not a death.
    retiring: bool = False


class Supervisor:
    """Runs ``workers`` copies of ``python -m eventrouter <argv> --fd <socket>``."""

    def __init__(
        self,
        argv: Sequence[str],
        workers: int,
        grace: float,
        listener: socket.socket | None,
        reload_dirs: Sequence[str] = (),
        first_only: Sequence[str] = (),
        not_inherited: Sequence[str] = (),
    ) -> None:
        self.argv = list(argv)
        #: Environment variables the workers do not inherit (the supervisor's own options).
        self.not_inherited = frozenset(not_inherited)
        self.count = workers
        self.grace = grace
        self.listener = listener
        self.reload_dirs = list(reload_dirs)
        #: Arguments only worker 0 gets (``--metrics``: one port, one process).
        self.first_only = list(first_only)
        self.workers: dict[int, Worker] = {}
        self.deaths: dict[int, deque[float]] = {}
        self.stopping = False
        self.exit_code = 0
        self._done = asyncio.Event()
        #: Every worker of the first start is ready.
        self._started = asyncio.Event()
        self._rolling = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- starting workers ----------------------------------------------------------------------

    async def spawn(self, slot: int) -> Worker | None:
        """Start the worker of ``slot``: the worker once it is ready, else ``None`` (it died
        first, or did not start in time)."""
        read, write = os.pipe()
        fds = [write]
        argv = [sys.executable, "-m", "eventrouter", *self.argv]
        if slot == 0:
            argv += self.first_only
        if self.listener is not None:
            fds.append(self.listener.fileno())
            argv += ["--fd", str(self.listener.fileno())]
        env = {k: v for k, v in os.environ.items() if k not in self.not_inherited}
        env.update({READY_FD: str(write), WORKER: str(slot), WORKERS: str(self.count)})
        try:
            process = await asyncio.create_subprocess_exec(*argv, env=env, pass_fds=fds)
        finally:
            os.close(write)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        pipe, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read, "rb", 0)
        )
        ready = asyncio.ensure_future(reader.readline())  # b"" once the child is gone
        exited = asyncio.ensure_future(process.wait())
        try:
            done, _ = await asyncio.wait(
                {ready, exited}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
            if ready in done and ready.result():
                log.info("worker ready", worker=slot, pid=process.pid)
                return Worker(slot, process)
        except BaseException:  # the supervisor stops while this one starts: no orphan
            if process.returncode is None:
                process.kill()
            raise
        finally:
            ready.cancel()
            exited.cancel()
            pipe.close()
        if process.returncode is None:  # hung in its start
            process.kill()
            await process.wait()
        log.error("worker did not start", worker=slot, exit_code=process.returncode)
        return None

    def _watch(self, worker: Worker) -> None:
        task = asyncio.ensure_future(self._supervise(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _supervise(self, worker: Worker) -> None:
        """Wait for ``worker`` to exit; start its slot again unless it was told to stop."""
        code = await worker.process.wait()
        if worker.retiring or self.stopping or self.workers.get(worker.slot) is not worker:
            return
        slot = worker.slot
        log.warning("worker died", worker=slot, pid=worker.process.pid, exit_code=code)
        deaths = self.deaths.setdefault(slot, deque(maxlen=CRASH_LOOP_DEATHS))
        if time.monotonic() - worker.started > CRASH_LOOP_WINDOW:
            deaths.clear()  # it had run well: start afresh
        while not self.stopping:
            deaths.append(time.monotonic())
            if len(deaths) == CRASH_LOOP_DEATHS and deaths[-1] - deaths[0] < CRASH_LOOP_WINDOW:
                log.error("worker crash loop: stopping", worker=slot, deaths=len(deaths))
                self.exit_code = 1
                await self.stop()
                return
            await asyncio.sleep(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (len(deaths) - 1)))
            new = await self.spawn(slot)
            if new is not None and self.stopping:  # ready after the others were stopped
                await self.retire(new)
                return
            if new is not None:
                self.workers[slot] = new
                self._watch(new)
                return

    # -- stopping and replacing ----------------------------------------------------------------

    async def retire(self, worker: Worker) -> None:
        """SIGTERM, then SIGKILL once its grace period (and a margin) passed."""
        worker.retiring = True
        if worker.process.returncode is None:
            worker.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(worker.process.wait(), self.grace + 10)
        except TimeoutError:
            worker.process.kill()
            await worker.process.wait()
        log.info("worker stopped", worker=worker.slot, exit_code=worker.process.returncode)

    async def roll(self, reason: str) -> bool:
        """Replace every worker, one slot at a time; ``False`` if a new one failed to start
        (the old workers keep serving)."""
        async with self._rolling:
            log.info("rolling restart", reason=reason, workers=self.count)
            for slot in sorted(self.workers):
                if self.stopping:
                    return False
                new = await self.spawn(slot)
                if new is None:
                    log.error("restart failed: the running workers keep serving", reason=reason)
                    return False
                old, self.workers[slot] = self.workers[slot], new
                self._watch(new)
                await self.retire(old)
            log.info("rolling restart done", workers=self.count)
            return True

    async def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        await asyncio.gather(*(self.retire(w) for w in self.workers.values()))
        self._done.set()

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        watcher = None
        if self.reload_dirs:
            # Watching before the workers start: a change made as soon as they are ready
            # (or while they start) is seen, and rolls them once they are all up.
            watching = asyncio.Event()
            watcher = asyncio.ensure_future(self._reload(watching))
            ready = asyncio.ensure_future(watching.wait())
            await asyncio.wait({watcher, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if watcher.done():
                watcher.result()  # the watcher failed: say why
        for slot in range(self.count):
            worker = await self.spawn(slot)
            if worker is None:
                self.stopping = True
                await asyncio.gather(*(self.retire(w) for w in self.workers.values()))
                return 1
            self.workers[slot] = worker
            self._watch(worker)
        log.info("workers started", workers=self.count, pid=os.getpid())
        self._started.set()
        stop = lambda: asyncio.ensure_future(self.stop())  # noqa: E731
        loop.add_signal_handler(signal.SIGTERM, stop)
        loop.add_signal_handler(signal.SIGINT, stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.roll("SIGHUP")))
        try:
            await self._done.wait()
        finally:
            if watcher is not None:
                watcher.cancel()
            for task in self._tasks:
                task.cancel()
        log.info("supervisor stopped", exit_code=self.exit_code)
        return self.exit_code

    async def _reload(self, watching: asyncio.Event) -> None:
        from watchfiles import PythonFilter, awatch

        # yield_on_timeout: an empty set after 300 ms without changes tells the watcher runs.
        async for changes in awatch(
            *self.reload_dirs, watch_filter=PythonFilter(), yield_on_timeout=True, rust_timeout=300
        ):
            watching.set()
            if not changes:
                continue
            await self._started.wait()
            if self.stopping:
                return
            files = sorted({PurePath(path).name for _, path in changes})
            await self.roll(f"changed: {', '.join(files[:5])}")
