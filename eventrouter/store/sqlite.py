"""The embedded durable queue: SQLite in WAL mode, written by one thread in group commits.

Every operation goes to the store's own thread; the thread takes everything queued since its
last transaction and runs it in one transaction, so a thousand concurrent ``enqueue`` calls
cost one commit. ``enqueue`` returns only after its commit (the event is on disk before the
caller gets an acknowledgement). Acknowledgements, retries and releases are fire-and-forget
and ride along with the next transaction; losing them in a crash only means an event is
processed again (at least once).

Several processes may enqueue into and consume one state dir (``--workers``). A consumer
leases what it claims, in the transaction that selects it: the row's ``leased`` is the lease's
deadline (epoch seconds; 0: free) and ``owner`` the consumer's id, so no two consumers hold
one event, and an event whose lease passed is free again. Each consumer holds a ``flock`` on
``consumers/<id>.lock`` while it runs: a lock file nobody holds is a consumer that died, and
its leases are returned at once (on start, and every few seconds while claiming) instead of
waiting for their deadline. Nothing acknowledged is lost by a crash.

Durability: ``synchronous=NORMAL`` in WAL mode survives a crash of the process (``kill -9``),
not a power loss of the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog

from eventrouter.errors import SourceError
from eventrouter.lineage import produced
from eventrouter.observability.tracing import current_trace
from eventrouter.store.base import StoredEvent
from eventrouter.store.schema import INSERT_EVENT, SCHEMA

log = structlog.get_logger("eventrouter.store")

#: Seconds a connection waits for another process's lock.
BUSY_TIMEOUT = 30.0
#: A lease lasts Lambda's longest timeout and a margin, unless the store is told otherwise.
LEASE_SECONDS = 930.0
#: How often a claiming consumer looks for consumers that died (their lock files).
REAP_INTERVAL = 5.0
_COLUMNS = (
    "id, queue, request_id, payload, enqueued_at, attempts, throttles, record, record_kind, trace,"
    " lineage"
)


_Op = Callable[[sqlite3.Connection], Any]
_Settled = tuple["asyncio.Future[Any] | None", Any, bool]


class EventStore:
    """The durable queue in ``<state_dir>/queue.db`` (a :class:`~eventrouter.store.base.Store`).

    >>> store = EventStore(".eventrouter", consumer=False)
    >>> await store.open()
    >>> await store.enqueue("fn:charge", request_id, b'{"amount": 3}')
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        consumer: bool,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / "queue.db"
        self.consumer = consumer
        #: How long a claimed event stays this consumer's (longer than any invocation).
        self.lease_seconds = lease_seconds
        #: This consumer's id in the ``owner`` column and its lock file's name.
        self.consumer_id = os.urandom(8).hex()
        self._reaped_at = 0.0
        #: Called on the loop after a commit that added events, with their queue names.
        self.on_enqueued: Callable[[set[str]], None] | None = None
        self._ops: queue.SimpleQueue[tuple[_Op, asyncio.Future[Any] | None] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_fd: int | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        private_dir(self.state_dir)
        # The database is created 0600 before SQLite opens it: SQLite gives its -wal and
        # -shm files the same mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        if self.consumer:
            self._take_consumer_lock()
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="eventrouter-store", daemon=True
        )
        self._thread.start()
        try:
            await ready
        except sqlite3.Error as exc:
            self._release_consumer_lock()
            raise SourceError(f"cannot open the queue {str(self.path)!r}: {exc}") from exc
        if self.consumer:
            await self._call(self._reap)
            # A state dir written before leases had owners: its leases were a single
            # consumer's, which is gone.
            await self._call(
                lambda c: c.execute(
                    "UPDATE events SET leased = 0 WHERE owner IS NULL AND leased != 0"
                )
            )

    async def close(self) -> None:
        """Commit what is queued and stop the store's thread."""
        if self._closed or self._thread is None:
            return
        self._closed = True
        if self.consumer:  # what this consumer still holds is free for the others now
            owner = self.consumer_id
            self._send(
                lambda c: c.execute(
                    "UPDATE events SET leased = 0, owner = NULL WHERE owner = ?", (owner,)
                )
            )
        await self.flush()
        self._ops.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._release_consumer_lock()

    def _release_consumer_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
            with contextlib.suppress(OSError):
                (self.state_dir / "consumers" / f"{self.consumer_id}.lock").unlink()

    def _take_consumer_lock(self) -> None:
        folder = self.state_dir / "consumers"
        folder.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(folder / f"{self.consumer_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh name: nobody else holds it
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _reap(self, conn: sqlite3.Connection) -> int:
        """Free the leases of consumers that died (their lock files held by nobody). In the
        store's thread."""
        self._reaped_at = time.monotonic()
        freed = 0
        folder = self.state_dir / "consumers"
        for path in folder.glob("*.lock"):
            owner = path.stem
            if owner == self.consumer_id:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # its consumer stopped meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alive = False
            except BlockingIOError:
                alive = True
            finally:
                os.close(fd)
            if alive:
                continue
            freed += conn.execute(
                "UPDATE events SET leased = 0, owner = NULL WHERE owner = ?", (owner,)
            ).rowcount
            with contextlib.suppress(OSError):
                path.unlink()
            log.info("leases of a stopped consumer returned", consumer=owner)
        return freed

    # -- the store's thread --------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # The busy timeout is set by connect() before anything else, so that a process
        # opening the database while another one creates it waits instead of failing.
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                # Switching to WAL takes an exclusive lock that does not always wait on the
                # busy handler: try again while another process holds it.
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        # A state dir written before traces were carried, or before leases had owners.
        for column in ("trace", "owner"):
            if column not in columns:
                with contextlib.suppress(sqlite3.OperationalError):  # another process added it
                    conn.execute(f"ALTER TABLE events ADD COLUMN {column} TEXT")
        if "lineage" not in columns:  # ... or before recursive loops were detected
            with contextlib.suppress(sqlite3.OperationalError):
                conn.execute("ALTER TABLE events ADD COLUMN lineage INTEGER NOT NULL DEFAULT 0")
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)
        return conn

    def _serve(self, ready: asyncio.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        try:
            conn = self._connect()
        except BaseException as exc:  # noqa: BLE001 - handed to the opener
            failed: list[_Settled] = [(ready, exc, True)]
            loop.call_soon_threadsafe(_settle, failed)
            return
        opened: list[_Settled] = [(ready, None, False)]
        loop.call_soon_threadsafe(_settle, opened)
        ops = self._ops
        writers = os.open(self.state_dir / "writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            first = ops.get()
            if first is None:
                break
            batch = [first]
            stop = False
            while len(batch) < 10_000:
                try:
                    item = ops.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            settled: list[_Settled] = []
            # Writers of the state dir queue on a file lock, which wakes the next one the
            # moment it is free; SQLite's own busy wait sleeps 1 ms and more between tries,
            # which left two workers idle a third of the time.
            fcntl.flock(writers, fcntl.LOCK_EX)
            try:
                conn.execute("BEGIN IMMEDIATE")
                for op, fut in batch:
                    try:
                        settled.append((fut, op(conn), False))
                    except sqlite3.Error as exc:
                        settled.append((fut, exc, True))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.rollback()
                settled = [(fut, exc, True) for _, fut in batch]
            finally:
                fcntl.flock(writers, fcntl.LOCK_UN)
            unanswered = sum(1 for fut, _, failed in settled if failed and fut is None)
            if unanswered:
                # Acknowledgements and retries nobody awaits: the events stay leased until the
                # next start returns them, so they are processed again, not lost.
                errors = [repr(value) for fut, value, failed in settled if failed and fut is None]
                log.error("store operations failed", count=unanswered, error=errors[0])
            loop.call_soon_threadsafe(_settle, settled)
            if stop:
                break
        conn.close()
        os.close(writers)

    def _call(self, op: _Op) -> asyncio.Future[Any]:
        assert self._loop is not None, "the store is not open"
        fut = self._loop.create_future()
        self._ops.put((op, fut))
        return fut

    def transact(self, op: Callable[[sqlite3.Connection], Any]) -> asyncio.Future[Any]:
        """Run ``op(connection)`` in the store's thread, inside its next transaction (the
        schedules' ledger and the event bus add rows beside events, atomically)."""
        return self._call(op)

    def enqueued(self, queues: set[str]) -> None:
        """Events were committed into ``queues`` by this process (by ``enqueue``, or by an
        op of :meth:`transact` that used :func:`~eventrouter.store.schema.add_events`): tell the
        dispatcher."""
        if queues and self.on_enqueued is not None:
            self.on_enqueued(queues)

    def _send(self, op: _Op) -> None:
        self._ops.put((op, None))

    # -- producing ---------------------------------------------------------------------------

    async def enqueue(
        self,
        queue_name: str,
        request_id: str,
        payload: bytes,
        *,
        now: float | None = None,
        trace: str | None = None,
    ) -> None:
        """Add one event; returns once it is committed to disk."""
        t = now if now is not None else _now()
        row = (queue_name, request_id, payload, t, t, trace or current_trace(), produced())

        await self._call(lambda conn: conn.execute(INSERT_EVENT, row))
        self.enqueued({queue_name})

    # -- consuming ---------------------------------------------------------------------------

    async def claim(self, requests: Iterable[tuple[list[str], int]]) -> list[StoredEvent]:
        """Lease due events: for each ``(queues, limit)`` up to ``limit`` of them, oldest first.
        Free events and events whose lease passed are taken; other consumers' are not."""
        plan = [(queues, limit) for queues, limit in requests if queues and limit > 0]
        if not plan:
            return []
        now = _now()
        until, owner = now + self.lease_seconds, self.consumer_id

        def op(conn: sqlite3.Connection) -> list[StoredEvent]:
            if time.monotonic() - self._reaped_at > REAP_INTERVAL:
                self._reap(conn)
            out: list[StoredEvent] = []
            for queues, limit in plan:
                marks = ",".join("?" * len(queues))
                rows = conn.execute(
                    f"UPDATE events SET leased = ?, owner = ? WHERE id IN ("
                    f" SELECT id FROM events WHERE queue IN ({marks}) AND leased <= ?"
                    f" AND due <= ? ORDER BY due LIMIT ?) RETURNING {_COLUMNS}, due",
                    (until, owner, *queues, now, now, limit),
                ).fetchall()
                rows.sort(key=lambda r: (r[-1], r[0]))
                out.extend(StoredEvent(*r[:-1]) for r in rows)
            return out

        result: list[StoredEvent] = await self._call(op)
        return result

    def ack(self, event: StoredEvent) -> None:
        """The event's outcome is final and delivered: remove it."""
        event_id = event.id
        self._send(lambda c: c.execute("DELETE FROM events WHERE id = ?", (event_id,)))

    def reschedule(self, event: StoredEvent, due: float, attempts: int, throttles: int) -> None:
        """Release the lease; the event is due again at ``due`` (epoch seconds)."""
        args = (due, attempts, throttles, event.id)
        self._send(
            lambda c: c.execute(
                "UPDATE events SET leased = 0, owner = NULL, due = ?, attempts = ?, throttles = ?"
                " WHERE id = ?",
                args,
            )
        )

    def hold_record(
        self, event: StoredEvent, record: bytes, kind: str, due: float, deliveries: int
    ) -> None:
        """The outcome is final but its record could not be delivered: keep it, try at ``due``.

        ``deliveries`` (failed delivery attempts) is kept in the ``throttles`` column: once an
        outcome is final the event is never invoked or throttled again.
        """
        args = (record, kind, due, deliveries, event.id)
        self._send(
            lambda c: c.execute(
                "UPDATE events SET leased = 0, owner = NULL, record = ?, record_kind = ?,"
                " due = ?, throttles = ? WHERE id = ?",
                args,
            )
        )

    async def flush(self) -> None:
        """Wait until every operation sent so far is committed."""
        await self._call(lambda c: None)

    # -- inspection --------------------------------------------------------------------------

    async def count(self, queue_name: str | None = None) -> int:
        """Events in ``queue_name`` (or in every queue), leased ones included."""
        args: tuple[str, ...] = ()
        if queue_name is None:
            sql = "SELECT count(*) FROM events"
        else:
            sql, args = "SELECT count(*) FROM events WHERE queue = ?", (queue_name,)
        result: int = await self._call(lambda c: c.execute(sql, args).fetchone()[0])
        return result

    async def depths(self) -> dict[str, tuple[int, float | None]]:
        """Per queue: its events (leased ones included) and when the oldest was enqueued.

        Counted on the ``events_ready`` index; one row read per queue for the oldest."""

        def op(conn: sqlite3.Connection) -> dict[str, tuple[int, float | None]]:
            rows = conn.execute(
                "SELECT queue, count(*), min(id) FROM events GROUP BY queue"
            ).fetchall()
            out: dict[str, tuple[int, float | None]] = {}
            for name, n, first in rows:
                row = conn.execute("SELECT enqueued_at FROM events WHERE id = ?", (first,))
                oldest = row.fetchone()
                out[name] = (n, oldest[0] if oldest else None)
            return out

        result: dict[str, tuple[int, float | None]] = await self._call(op)
        return result

    async def pop(self, queue_name: str, limit: int = 100) -> list[StoredEvent]:
        """Remove and return up to ``limit`` of the oldest events of a queue that nobody
        holds a lease on."""
        now = _now()

        def op(conn: sqlite3.Connection) -> list[StoredEvent]:
            rows = conn.execute(
                f"DELETE FROM events WHERE id IN (SELECT id FROM events WHERE queue = ?"
                f" AND leased <= ? ORDER BY id LIMIT ?) RETURNING {_COLUMNS}",
                (queue_name, now, limit),
            ).fetchall()
            rows.sort(key=lambda r: r[0])
            return [StoredEvent(*r) for r in rows]

        result: list[StoredEvent] = await self._call(op)
        return result


def _settle(items: list[_Settled]) -> None:
    for fut, value, failed in items:
        if fut is None or fut.done():
            continue
        if failed:
            fut.set_exception(value)
        else:
            fut.set_result(value)


def _now() -> float:
    return time.time()


def private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700 (it holds events, which may carry personal data); a
    folder that already exists and is open to others is left as it is, with a warning."""
    try:
        path.mkdir(parents=True, mode=0o700)
        os.chmod(path, 0o700)  # whatever the umask
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "state_dir is open to other users: chmod 700 it", path=str(path), mode=oct(mode)
            )
