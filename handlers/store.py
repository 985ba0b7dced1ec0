"""The shop's orders, kept in a small SQLite table so that what the demo shows is what
happened: placed, receipt sent, shipped, or receipt failed."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import anyio.to_thread

#: Next to the demo's other output (``out/``); ``SHOP_DB`` moves it.
PATH = Path(os.environ.get("SHOP_DB", "out/shop.db"))

_SCHEMA = """CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, email TEXT NOT NULL, total REAL NOT NULL,
    status TEXT NOT NULL, updated REAL NOT NULL)"""


def _connect() -> sqlite3.Connection:
    PATH.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(PATH, timeout=5)
    db.execute(_SCHEMA)
    return db


def _write(sql: str, *args: object) -> None:
    with _connect() as db:
        db.execute(sql, args)


def _read(order_id: str) -> dict[str, object] | None:
    with _connect() as db:
        row = db.execute(
            "SELECT order_id, email, total, status FROM orders WHERE order_id = ?", (order_id,)
        ).fetchone()
    if row is None:
        return None
    return {"order_id": row[0], "email": row[1], "total": row[2], "status": row[3]}


async def place(order_id: str, email: str, total: float) -> None:
    await anyio.to_thread.run_sync(
        _write,
        "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, 'placed', ?)",
        order_id,
        email,
        total,
        time.time(),
    )


async def set_status(order_id: str, status: str) -> None:
    await anyio.to_thread.run_sync(
        _write,
        "UPDATE orders SET status = ?, updated = ? WHERE order_id = ?",
        status,
        time.time(),
        order_id,
    )


async def find(order_id: str) -> dict[str, object] | None:
    return await anyio.to_thread.run_sync(_read, order_id)
