"""The embedded store's database (``state dir/events.sqlite``): every table, and every write to
``events``, in one place.

- ``events``: the durable queue (asynchronous invocations, embedded queues; their records).
- ``archive``: the events of buses with ``archive_days`` (``bus/buses.py`` reads and purges).
- ``schedules``: each schedule's ledger row (``sources/schedule/ledger.py``).
- ``shard_checkpoints``: Kinesis and DynamoDB Streams checkpoints of one host
  (``sources/shards/checkpoints.py``).

The store creates them all when it opens; the modules above only read and write rows, and
add events through :func:`add_events` in their own transactions (a bus's matching rules, a
schedule's fire with its ledger row), never with SQL of their own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    request_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    enqueued_at REAL NOT NULL,
    due REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    throttles INTEGER NOT NULL DEFAULT 0,
    leased REAL NOT NULL DEFAULT 0,
    record BLOB,
    record_kind TEXT,
    trace TEXT,
    owner TEXT,
    lineage INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_ready ON events (queue, leased, due);
CREATE TABLE IF NOT EXISTS archive (
    id INTEGER PRIMARY KEY,
    bus TEXT NOT NULL,
    time REAL NOT NULL,
    event BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS archive_time ON archive (bus, time);
CREATE TABLE IF NOT EXISTS schedules (
    arn TEXT PRIMARY KEY,
    expression TEXT NOT NULL,
    created REAL NOT NULL,
    last_due REAL,
    last_fired_at REAL,
    last_outcome TEXT
);
CREATE TABLE IF NOT EXISTS shard_checkpoints (
    consumer TEXT NOT NULL,
    shard TEXT NOT NULL,
    sequence TEXT,
    finished INTEGER NOT NULL DEFAULT 0,
    window BLOB,
    PRIMARY KEY (consumer, shard)
);
"""
#: Adds one event: (queue, request_id, payload, enqueued_at, due, trace, lineage).
INSERT_EVENT = (
    "INSERT INTO events (queue, request_id, payload, enqueued_at, due, trace, lineage)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def add_events(
    conn: sqlite3.Connection,
    events: Iterable[tuple[str, str, bytes]],
    now: float,
    trace: str | None = None,
    lineage: int = 0,
) -> None:
    """Add ``(queue, request id, payload)`` events, due now, inside the caller's transaction."""
    conn.executemany(INSERT_EVENT, [(q, r, p, now, now, trace, lineage) for q, r, p in events])
