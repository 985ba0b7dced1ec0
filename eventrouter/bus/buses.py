"""The embedded event buses of a running router: put, match, fan out, archive, replay.

``put_events`` takes entries in ``PutEvents``' shape (``Source``, ``DetailType``, ``Detail``
as JSON text, ``Resources``, ``Time``, ``EventBusName``), answers per entry as EventBridge
does, and returns only when every matched rule's invocation (and the archived copy) is
durable: with the embedded store, all of one call's writes are one transaction.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from eventrouter.arns import ACCOUNT, DEFAULT_BUS, REGION, bus_name
from eventrouter.bus.index import RuleIndex
from eventrouter.bus.transform import target_input
from eventrouter.errors import ConfigError, InvalidRequestContent
from eventrouter.events import new_request_id
from eventrouter.lineage import produced
from eventrouter.observability.tracing import current_trace
from eventrouter.security.policy import Policy
from eventrouter.sources.bus.rules import EventBus, EventRule
from eventrouter.sources.schedule.expressions import iso
from eventrouter.store.base import function_queue
from eventrouter.store.schema import add_events
from eventrouter.store.sqlite import EventStore

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec, RouterInfo, SourcePort

log = structlog.get_logger("eventrouter.bus")

#: Seconds between two purges of archived events past their retention.
PURGE_EVERY = 3600.0
#: EventBridge's PutEvents limits.
MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
Route = tuple["FunctionSpec", EventRule]


def _failure(code: str, message: str) -> dict[str, str]:
    return {"ErrorCode": code, "ErrorMessage": message}


def entry_size(entry: dict[str, Any]) -> int:
    """An entry's size as EventBridge counts it toward the 256 KB limit."""
    size = 14 if entry.get("Time") is not None else 0
    for field in ("Source", "DetailType", "Detail"):
        value = entry.get(field)
        if isinstance(value, str):
            size += len(value.encode())
    for resource in entry.get("Resources") or ():
        if isinstance(resource, str):
            size += len(resource.encode())
    return size


def _rough_size(entries: list[Any]) -> int:
    """Characters of the entries' text: a UTF-8 size is at most four times as many."""
    size = 0
    for e in entries:
        if isinstance(e, dict):
            size += 14  # Time
            for field in ("Source", "DetailType", "Detail"):
                value = e.get(field)
                size += len(value) if isinstance(value, str) else 0
            size += sum(len(r) for r in e.get("Resources") or () if isinstance(r, str))
    return size


def _time(value: Any) -> float | None:
    if value is None:
        return time.time()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return None


_last_iso: tuple[int, str] = (0, "")


def _iso(at: float) -> str:
    """``iso(at)``, remembered for the current second (most events are stamped now)."""
    global _last_iso
    second = int(at)
    if _last_iso[0] != second:
        _last_iso = (second, iso(second))
    return _last_iso[1]


class EventBuses:
    """The buses and rules of one runtime."""

    def __init__(self, runtime: SourcePort, registry: RouterInfo) -> None:
        self.runtime = runtime
        self.buses: dict[str, EventBus] = {DEFAULT_BUS: EventBus(DEFAULT_BUS)}
        self.buses.update({bus.name: bus for bus in registry.buses})
        routes: dict[str, list[Route]] = {}
        for spec in registry.functions.values():
            rule = spec.source
            if isinstance(rule, EventRule):
                self.buses.setdefault(rule.bus_name, EventBus(rule.bus_name))
                routes.setdefault(rule.bus_name, []).append((spec, rule))
        self.index: dict[str, RuleIndex[Route]] = {
            name: RuleIndex((r.pattern, r.matcher, (s, r)) for s, r in routes.get(name, []))
            for name in self.buses
        }
        self.policies: dict[str, Policy | None] = {
            name: None
            if bus.policy is None
            else Policy.load(bus.policy, resource_policy=True, origin=f"bus {name} policy")
            for name, bus in self.buses.items()
        }
        self.archives = {name for name, bus in self.buses.items() if bus.archive_days}
        #: When a write to an archive next drops what is past its retention (the first
        #: archive write of a run does).
        self._next_purge = 0.0

    def check(self) -> None:
        """Archives live in the embedded store's database."""
        if self.archives and not isinstance(self.runtime.store, EventStore):
            raise ConfigError(
                f"event bus archives ({', '.join(sorted(self.archives))}) need the embedded "
                "store; with async_queue=Sqs(...) set archive_days=0"
            )

    # -- putting -----------------------------------------------------------------------------

    def _event(self, entry: Any) -> tuple[str, dict[str, Any]] | dict[str, str]:
        """The bus and envelope of one entry, or its ``ErrorCode``/``ErrorMessage``."""
        if not isinstance(entry, dict):
            return _failure("InvalidArgument", "Entry is not an object.")
        for field in ("Source", "DetailType", "Detail"):
            if not isinstance(entry.get(field), str) or not entry[field]:
                return _failure(
                    "InvalidArgument",
                    f"Parameter {field} is not valid. Reason: {field} is a required argument.",
                )
        if entry["Source"].startswith("aws."):
            return _failure("NotAuthorizedForSourceException", "Not authorized for the source.")
        try:
            detail = _decoder.decode(entry["Detail"])
        except msgspec.DecodeError:
            detail = None
        if not isinstance(detail, dict):
            return _failure("MalformedDetail", "Detail is malformed.")
        name = bus_name(entry.get("EventBusName") or DEFAULT_BUS)
        if name not in self.buses:
            return _failure("ResourceNotFoundException", f"Event bus {name} does not exist.")
        resources = entry.get("Resources") or []
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            return _failure("InvalidArgument", "Parameter Resources is not valid.")
        at = _time(entry.get("Time"))
        if at is None:
            return _failure("InvalidArgument", "Parameter Time is not valid.")
        event: dict[str, Any] = {
            "version": "0",
            "id": new_request_id(),
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": ACCOUNT,
            "time": _iso(at),
            "region": REGION,
            "resources": resources,
            "detail": detail,
        }
        return name, event

    async def put_events(self, entries: list[Any]) -> list[dict[str, str]]:
        """Put entries on their buses; one result per entry (``EventId`` or an error).

        ``InvalidRequestContent`` for a request EventBridge refuses whole (no entries, more
        than ten, over 256 KB)."""
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
            raise InvalidRequestContent(
                f"Entries: 1 to {MAX_ENTRIES} entries are allowed in one PutEvents request"
            )
        if _rough_size(entries) > MAX_REQUEST_BYTES // 4 and (
            sum(entry_size(e) for e in entries if isinstance(e, dict)) > MAX_REQUEST_BYTES
        ):
            raise InvalidRequestContent(
                "Total size of the entries in the request is over the limit."
            )
        results: list[dict[str, str]] = []
        events: list[tuple[str, dict[str, Any], bytes]] = []
        for entry in entries:
            made = self._event(entry)
            if isinstance(made, dict):
                results.append(made)
                continue
            name, event = made
            raw = _encoder.encode(event)
            events.append((name, event, raw))
            results.append({"EventId": event["id"]})
        await self.publish(events, archive=True)
        return results

    def routes(self, bus: str, event: dict[str, Any]) -> list[Route]:
        return self.index[bus].match(event)

    async def publish(
        self,
        events: list[tuple[str, dict[str, Any], bytes]],
        *,
        archive: bool,
        only_rule: str | None = None,
    ) -> int:
        """Fan ``(bus, envelope, encoded)`` out to every matching rule; the invocations
        queued."""
        writes: list[tuple[str, str, bytes]] = []
        archived: list[tuple[str, float, bytes]] = []
        metrics = self.runtime.metrics
        for name, event, raw in events:
            for spec, rule in self.index[name].match(event):
                if only_rule is not None and rule.name != only_rule:
                    continue
                payload = target_input(
                    event,
                    raw,
                    input_path=rule.input_path,
                    transformer=rule.transformer,
                    rule_name=rule.name or spec.name,
                    rule_arn=rule.arn,
                )
                writes.append((function_queue(spec.name), new_request_id(), payload))
                metrics.add("MatchedEvents", spec.name)
            if archive and name in self.archives:
                archived.append((name, time.time(), raw))
        await self._write(writes, archived)
        return len(writes)

    async def _write(
        self, writes: list[tuple[str, str, bytes]], archived: list[tuple[str, float, bytes]]
    ) -> None:
        store = self.runtime.store
        trace = current_trace()  # the caller's (ctx.send, a delivery, PutEvents over HTTP)
        if not isinstance(store, EventStore):
            for queue, request_id, payload in writes:
                await store.enqueue(queue, request_id, payload)
            return
        if not writes and not archived:
            return
        now = time.time()
        purge = bool(archived) and now >= self._next_purge
        if purge:
            self._next_purge = now + PURGE_EVERY
        lineage = produced()  # read here: the op runs in the store's thread

        def op(conn: sqlite3.Connection) -> None:
            add_events(conn, writes, now, trace, lineage)
            if archived:
                conn.executemany(
                    "INSERT INTO archive (bus, time, event) VALUES (?, ?, ?)", archived
                )
            if purge:
                self._purge(conn, now)

        await store.transact(op)
        store.enqueued({q for q, _, _ in writes})

    # -- archives ----------------------------------------------------------------------------

    async def purge(self, now: float | None = None) -> None:
        """Drop archived events older than their bus's ``archive_days`` (also done by
        writes to an archive, every :data:`PURGE_EVERY` seconds)."""
        store = self.runtime.store
        assert isinstance(store, EventStore)
        t = time.time() if now is None else now
        await store.transact(lambda c: self._purge(c, t))

    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        cutoffs = [(n, now - self.buses[n].archive_days * 86_400) for n in self.archives]
        conn.executemany("DELETE FROM archive WHERE bus = ? AND time < ?", cutoffs)

    async def replay(
        self, bus: str, start: float, end: float, *, rule: str | None = None, name: str
    ) -> tuple[int, int]:
        """Put the events archived on ``bus`` between ``start`` and ``end`` again, with
        ``replay-name`` set (to ``rule``'s function only, if given): (events, invocations)."""
        if bus not in self.archives:
            raise ConfigError(
                f"event bus {bus!r} has no archive (EventBus({bus!r}, archive_days=N))"
            )
        if rule is not None and not any(r.name == rule for _, r in self.index[bus].items):
            raise ConfigError(f"event bus {bus!r} has no rule {rule!r}")
        store = self.runtime.store
        assert isinstance(store, EventStore)
        rows: list[tuple[bytes]] = await store.transact(
            lambda c: c.execute(
                "SELECT event FROM archive WHERE bus = ? AND time >= ? AND time <= ? ORDER BY id",
                (bus, start, end),
            ).fetchall()
        )
        events = []
        for (raw,) in rows:
            event = _decoder.decode(raw)
            event["replay-name"] = name
            events.append((bus, event, _encoder.encode(event)))
        invocations = await self.publish(events, archive=False, only_rule=rule)
        log.info("replayed", bus=bus, replay_name=name, events=len(events), invocations=invocations)
        return len(events), invocations
