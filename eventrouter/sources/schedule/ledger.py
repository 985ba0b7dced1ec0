"""The schedules' ledger: what has fired, kept where the fired events are kept.

Each schedule has one row: its expression, when it was first seen (a rate's anchor), the last
due time that fired or was skipped, and when and how. ``fire`` adds the event to the durable
queue and moves ``last_due`` in one transaction, and only if ``last_due`` is still before the
due time: a due time fires once, whatever restarts, clock jumps or concurrent fires do.

:class:`SqliteLedger` keeps the rows in the embedded store's database (``queue.db``).
Several hosts sharing an SQS-backed queue agree through
:class:`~eventrouter.sources.schedule.dynamo.DynamoLedger` instead.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Protocol

import msgspec

from eventrouter.store.schema import add_events

if TYPE_CHECKING:
    from eventrouter.store.sqlite import EventStore


#: One fire for the ledger: (schedule ARN, due time, queue, request id, event).
FireRow = tuple[str, float, str, str, bytes]


class ScheduleState(msgspec.Struct):
    """A schedule as the ledger knows it."""

    arn: str
    expression: str
    #: When the schedule was first seen (a rate's anchor when it has no ``start``).
    created: float
    #: The last due time that fired or was skipped (``None``: none yet).
    last_due: float | None = None
    last_fired_at: float | None = None
    last_outcome: str | None = None


class Ledger(Protocol):
    async def load_many(self, schedules: list[tuple[str, str]], now: float) -> list[ScheduleState]:
        """The state of each ``(arn, expression)``; a new (or changed) expression starts
        afresh at ``now``."""
        ...

    async def fire_many(self, fires: list[FireRow]) -> list[bool]:
        """For each ``(arn, due, queue, request_id, payload)``, in order: queue the event of
        due time ``due`` unless it (or a later one) already fired; ``True`` where this call
        fired it."""
        ...

    async def skip(self, arn: str, due: float, outcome: str) -> None:
        """Due times up to ``due`` will not fire (missed, dead-lettered)."""
        ...

    async def record_outcome(self, arn: str, request_id: str, condition: str) -> None:
        """The last fire's invocation ended with ``condition`` (if it still is the last)."""
        ...

    async def states(self) -> list[ScheduleState]: ...


class SqliteLedger:
    """The ledger in the embedded store's database."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def load_many(self, schedules: list[tuple[str, str]], now: float) -> list[ScheduleState]:

        def op(conn: sqlite3.Connection) -> list[ScheduleState]:
            out = []
            for arn, expression in schedules:
                row = conn.execute(
                    "SELECT arn, expression, created, last_due, last_fired_at, last_outcome"
                    " FROM schedules WHERE arn = ?",
                    (arn,),
                ).fetchone()
                if row is not None and row[1] == expression:
                    out.append(ScheduleState(*row))
                    continue
                conn.execute(
                    "INSERT OR REPLACE INTO schedules (arn, expression, created) VALUES (?, ?, ?)",
                    (arn, expression, now),
                )
                out.append(ScheduleState(arn, expression, now))
            return out

        states: list[ScheduleState] = await self.store.transact(op)
        return states

    async def fire_many(self, fires: list[FireRow]) -> list[bool]:
        now = time.time()

        def op(conn: sqlite3.Connection) -> list[bool]:
            out = []
            for arn, due, queue, request_id, payload in fires:
                updated = conn.execute(
                    "UPDATE schedules SET last_due = ?, last_fired_at = ?, last_outcome = ?"
                    " WHERE arn = ? AND (last_due IS NULL OR last_due < ?)",
                    (due, now, f"queued {request_id}", arn, due),
                ).rowcount
                if updated:
                    add_events(conn, [(queue, request_id, payload)], now)
                out.append(bool(updated))
            return out

        fired: list[bool] = await self.store.transact(op)
        self.store.enqueued({row[2] for row, done in zip(fires, fired, strict=True) if done})
        return fired

    async def skip(self, arn: str, due: float, outcome: str) -> None:
        now = time.time()
        await self.store.transact(
            lambda c: c.execute(
                "UPDATE schedules SET last_due = ?, last_fired_at = ?, last_outcome = ?"
                " WHERE arn = ? AND (last_due IS NULL OR last_due < ?)",
                (due, now, outcome, arn, due),
            )
        )

    async def record_outcome(self, arn: str, request_id: str, condition: str) -> None:
        await self.store.transact(
            lambda c: c.execute(
                "UPDATE schedules SET last_outcome = ? WHERE arn = ? AND last_outcome = ?",
                (f"{condition} {request_id}", arn, f"queued {request_id}"),
            )
        )

    async def states(self) -> list[ScheduleState]:
        rows = await self.store.transact(
            lambda c: c.execute(
                "SELECT arn, expression, created, last_due, last_fired_at, last_outcome"
                " FROM schedules ORDER BY arn"
            ).fetchall()
        )
        return [ScheduleState(*row) for row in rows]
