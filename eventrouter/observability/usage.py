"""Usage and what Lambda would have charged for it: requests and GB-seconds per function.

Every invocation's billed duration (REPORT's, rounded up to the millisecond) times the
function's memory is added up in memory by :class:`~eventrouter.observability.metrics.Metrics`;
the ledger writes the increments to ``usage.sqlite`` in the state dir every few seconds and
at shutdown, one row per function, memory size and hour, beside the router's CPU seconds of
the same hour. ``python -m eventrouter usage --since 24h`` reads them back and prices them
with ``prices.json`` (Lambda's published on-demand prices, with the date they were taken).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import structlog

from eventrouter.errors import ConfigError
from eventrouter.observability.metrics import cpu_seconds
from eventrouter.store.sqlite import private_dir

if TYPE_CHECKING:
    from eventrouter.contract.spec import RouterInfo
    from eventrouter.observability.metrics import Metrics

log = structlog.get_logger("eventrouter")

FILE = "usage.sqlite"
#: Seconds between writes of the increments.
FLUSH_INTERVAL = 10.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    hour INTEGER NOT NULL,
    function TEXT NOT NULL,
    memory_mb INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    billed_ms INTEGER NOT NULL,
    PRIMARY KEY (hour, function, memory_mb)
);
CREATE TABLE IF NOT EXISTS cpu (hour INTEGER PRIMARY KEY, seconds REAL NOT NULL);
"""
_ADD_USAGE = """
INSERT INTO usage (hour, function, memory_mb, requests, billed_ms) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (hour, function, memory_mb) DO UPDATE SET
    requests = requests + excluded.requests, billed_ms = billed_ms + excluded.billed_ms
"""
_ADD_CPU = """
INSERT INTO cpu (hour, seconds) VALUES (?, ?)
ON CONFLICT (hour) DO UPDATE SET seconds = seconds + excluded.seconds
"""


class FunctionUsage(msgspec.Struct):
    function: str
    requests: int
    gb_seconds: float
    #: What Lambda would have charged: requests plus GB-seconds, by architecture ($).
    x86_64: float
    arm64: float


class Usage(msgspec.Struct):
    since: float
    functions: list[FunctionUsage]
    cpu_seconds: float
    prices_as_of: str


def _connect(path: Path, create: bool = False) -> sqlite3.Connection:
    if create:  # private, as the state dir's queue is (its -wal and -shm files follow)
        private_dir(path.parent)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(_SCHEMA)
    return conn


class UsageLedger:
    """Writes a runtime's usage increments to the state dir (see the module's text)."""

    def __init__(self, metrics: Metrics, router: RouterInfo, state_dir: str) -> None:
        self.metrics = metrics
        self.memory = {name: spec.settings.memory_mb for name, spec in router.functions.items()}
        self.path = Path(state_dir) / FILE
        #: What was written so far: function -> (requests, billed ms); and CPU seconds.
        self._written: dict[str, tuple[int, int]] = {}
        self._cpu = cpu_seconds()
        #: The last day's usage, read back after each write (the dashboard shows it).
        self.last_day: Usage | None = None

    def _increments(
        self,
    ) -> tuple[list[tuple[str, int, int, int]], float, dict[str, tuple[int, int]], float]:
        """The rows and CPU seconds to add since the last write, and the marks that are
        written once they are (a failed write leaves them to the next one)."""
        rows = []
        marks = dict(self._written)
        for name, numbers in self.metrics.functions.items():
            requests, billed = self._written.get(name, (0, 0))
            if numbers.invocations > requests:
                rows.append(
                    (name, self.memory.get(name, 128), numbers.invocations - requests,
                     numbers.billed_ms - billed)
                )  # fmt: skip
                marks[name] = (numbers.invocations, numbers.billed_ms)
        now_cpu = cpu_seconds()
        return rows, now_cpu - self._cpu, marks, now_cpu

    def _write(self, rows: list[tuple[str, int, int, int]], cpu: float) -> Usage:
        hour = int(time.time() // 3600 * 3600)
        conn = _connect(self.path, create=True)
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_ADD_USAGE, [(hour, *row) for row in rows])
                conn.execute(_ADD_CPU, (hour, cpu))
            return _read(conn, time.time() - 86_400)
        finally:
            conn.close()

    async def flush(self) -> None:
        """Write what was used since the last write (in a thread: a SQLite transaction); if
        the write fails, it is logged and the same increments go with the next one."""
        rows, cpu, marks, now_cpu = self._increments()
        try:
            self.last_day = await anyio.to_thread.run_sync(self._write, rows, cpu)
        except (sqlite3.Error, OSError) as exc:
            log.warning("usage not written", error=repr(exc))
            return
        self._written, self._cpu = marks, now_cpu

    async def run(self) -> None:
        """Write every :data:`FLUSH_INTERVAL` seconds until cancelled."""
        while True:
            await anyio.sleep(FLUSH_INTERVAL)
            await self.flush()


@functools.cache
def prices() -> dict[str, Any]:
    """Lambda's prices (``prices.json``, read once)."""
    text = resources.files("eventrouter.observability").joinpath("prices.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def charge(requests: int, gb_seconds: float, architecture: str, table: dict[str, Any]) -> float:
    """Dollars for ``requests`` and ``gb_seconds`` on ``architecture``, the GB-second tiers
    applied to these totals as to one month's."""
    dollars: float = requests / 1_000_000 * table["requests_per_million"]
    below = 0.0
    for tier in table["gb_second"][architecture]:
        top = tier["up_to"]
        part = gb_seconds - below if top is None else min(gb_seconds, top) - below
        if part <= 0:
            break
        dollars += part * tier["price"]
        if top is None:
            break
        below = top
    return dollars


def _read(conn: sqlite3.Connection, since: float) -> Usage:
    table = prices()
    first_hour = int(since // 3600 * 3600)
    rows = conn.execute(
        "SELECT function, sum(requests), sum(billed_ms * memory_mb) FROM usage "
        "WHERE hour >= ? GROUP BY function ORDER BY function",
        (first_hour,),
    ).fetchall()
    functions = []
    for function, requests, mb_ms in rows:
        gb_seconds = mb_ms / 1024 / 1000
        functions.append(
            FunctionUsage(
                function=function,
                requests=requests,
                gb_seconds=gb_seconds,
                x86_64=charge(requests, gb_seconds, "x86_64", table),
                arm64=charge(requests, gb_seconds, "arm64", table),
            )
        )
    (cpu,) = conn.execute(
        "SELECT coalesce(sum(seconds), 0) FROM cpu WHERE hour >= ?", (first_hour,)
    ).fetchone()
    return Usage(
        since=first_hour, functions=functions, cpu_seconds=cpu, prices_as_of=table["as_of"]
    )


def read_usage(state_dir: str | os.PathLike[str], since: float) -> Usage:
    """The usage recorded in ``state_dir`` from the hour holding ``since`` (epoch seconds)."""
    path = Path(state_dir) / FILE
    if not path.exists():
        raise ConfigError(f"no usage recorded in {os.fspath(state_dir)!r} (no {FILE})")
    conn = _connect(path)
    try:
        return _read(conn, since)
    finally:
        conn.close()


_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_span(text: str) -> float:
    """``"24h"`` → 86400.0 (s, m, h or d)."""
    match = _SPAN.match(text.strip())
    if match is None:
        raise ConfigError(f"--since {text!r} must be a number and s, m, h or d, e.g. 24h")
    return float(match.group(1)) * _UNIT[match.group(2)]


def money(dollars: float) -> str:
    """Dollars with the digits that matter: ``0.0123``, ``2.02e-07``."""
    return f"{dollars:.4f}" if dollars >= 0.01 or dollars == 0 else f"{dollars:.3g}"


def usage_table(usage: Usage) -> str:
    """What ``python -m eventrouter usage`` prints."""
    header = ["function", "requests", "GB-seconds", "x86_64 $", "arm64 $"]
    rows = [
        [u.function, str(u.requests), f"{u.gb_seconds:.3f}", money(u.x86_64), money(u.arm64)]
        for u in usage.functions
    ]
    total_requests = sum(u.requests for u in usage.functions)
    rows.append(
        [
            "(all)",
            str(total_requests),
            f"{sum(u.gb_seconds for u in usage.functions):.3f}",
            money(sum(u.x86_64 for u in usage.functions)),
            money(sum(u.arm64 for u in usage.functions)),
        ]
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(usage.since))
    lines.append("")
    lines.append(f"since {since}; router CPU seconds: {usage.cpu_seconds:.2f}")
    lines.append(
        f"Lambda on-demand prices as of {usage.prices_as_of} (eventrouter/observability/"
        "prices.json), free tier not subtracted"
    )
    return "\n".join(lines)
