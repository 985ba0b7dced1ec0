"""``Schedule``: EventBridge Scheduler's schedules, embedded and durable.

Each due time is one asynchronous invocation of the function (lambda-semantics.md §1): it
counts as fired once it is in the durable queue, then the function's retries, maximum event
age and destinations apply. The schedule's own ``max_retries`` / ``max_event_age`` and
``dead_letter`` are Scheduler's: they apply to a fire that cannot be queued.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from eventrouter.arns import ACCOUNT, REGION, schedule_arn
from eventrouter.config import check_int
from eventrouter.contract.spec import Model, SourceBase, Starter
from eventrouter.errors import ConfigError
from eventrouter.keywords import CheckedStructMeta
from eventrouter.sources.schedule.expressions import Expression, iso, parse_expression, to_instant

#: The service principal schedules invoke their functions as.
SCHEDULER_SERVICE = "scheduler.amazonaws.com"
CATCH_UP = ("none", "latest", "all")


class Schedule(SourceBase, frozen=True, dict=True, metaclass=CheckedStructMeta):
    """Invoke the function on a schedule::

        @router.on_event(Schedule("cron(0 2 * * ? *)", timezone="Europe/Paris"))
        async def nightly(event, ctx): ...

    ``expression``: ``rate(N minutes|hours|days|seconds)``, ``cron(...)`` (EventBridge's six
    fields) or ``at(yyyy-mm-ddThh:mm:ss)``. ``timezone``: an IANA name for cron and at.
    ``start`` / ``end``: no fire before / after (datetime, ISO text or epoch seconds).
    ``flexible_window``: seconds (60-86,400) over which each fire is spread; 0 is off.
    ``input``: the event (default: EventBridge's "Scheduled Event"). ``catch_up``: what
    happens to times missed while the router was down (``"none"``, ``"latest"``, ``"all"``).
    ``max_retries`` / ``max_event_age`` / ``dead_letter``: Scheduler's retry policy for a
    fire that cannot be queued. ``name``: default the function's name.
    """

    model: ClassVar[Model] = "async"
    principal: ClassVar[str | None] = SCHEDULER_SERVICE
    batch_size: ClassVar[int] = 1
    named_queue: ClassVar[None] = None
    #: Fired by the engine's scheduler (its other async sources: the event bus's rules).
    #: ``ScheduleStarter`` (set in this package's ``__init__``: the scheduler names this class).
    starter: ClassVar[Starter | None] = None

    expression: str
    timezone: str = "UTC"
    start: Any = None
    end: Any = None
    flexible_window: int = 0
    input: Any = None
    catch_up: Literal["none", "latest", "all"] = "latest"
    max_retries: int = 185
    max_event_age: int = 86_400
    dead_letter: Any = None
    name: str | None = None
    group: str = "default"

    def __post_init__(self) -> None:
        parsed = parse_expression(self.expression)
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ConfigError(
                f"Schedule({self.expression!r}): timezone={self.timezone!r} is not an IANA "
                "time zone name (e.g. 'Europe/Paris')"
            ) from None
        start = None if self.start is None else to_instant(self.start, zone, "start")
        end = None if self.end is None else to_instant(self.end, zone, "end")
        if start is not None and end is not None and end <= start:
            raise ConfigError(f"Schedule({self.expression!r}): end must be after start")
        if self.flexible_window != 0:
            check_int("flexible_window", self.flexible_window, 60, 86_400, "seconds, 0 = off")
        if self.catch_up not in CATCH_UP:
            raise ConfigError(f"catch_up={self.catch_up!r} must be one of {', '.join(CATCH_UP)}")
        check_int("max_retries", self.max_retries, 0, 185)
        check_int("max_event_age", self.max_event_age, 60, 86_400, "seconds")
        if self.input is not None:
            try:
                data = msgspec.json.encode(self.input)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"Schedule input cannot be encoded as JSON: {exc}") from None
            self.__dict__["_input"] = data
        self.__dict__.update(_expression=parsed, _zone=zone, _start=start, _end=end)

    # -- the parsed settings -------------------------------------------------------------------

    @property
    def parsed(self) -> Expression:
        expression: Expression = self.__dict__["_expression"]
        return expression

    @property
    def zone(self) -> ZoneInfo:
        zone: ZoneInfo = self.__dict__["_zone"]
        return zone

    @property
    def start_at(self) -> float | None:
        value: float | None = self.__dict__["_start"]
        return value

    @property
    def end_at(self) -> float | None:
        value: float | None = self.__dict__["_end"]
        return value

    @property
    def arn(self) -> str:
        return schedule_arn(self.name or "?", self.group)

    def bind(self, function: str) -> Schedule:
        """The schedule named after ``function`` unless it has a name."""
        return self if self.name else msgspec.structs.replace(self, name=function)

    # -- Source ------------------------------------------------------------------------------

    def source_arns(self) -> list[str]:
        return [self.arn]

    def adapter(self, spec: Any, runtime: Any) -> None:
        return None  # fired by the engine's scheduler into the function's queue

    def trace_attributes(self) -> dict[str, Any]:
        return {"faas.trigger": "timer", "faas.cron": self.expression}

    def describe(self) -> str:
        zone = "" if self.timezone == "UTC" else f" {self.timezone}"
        return f"schedule:{self.expression}{zone}"

    # -- fire times and events ---------------------------------------------------------------

    def anchor(self, created: float) -> float:
        """A rate's anchor: ``start``, else when the ledger first saw the schedule."""
        return self.start_at if self.start_at is not None else created

    def next_due(self, after: float, anchor: float) -> float | None:
        """The first due time after ``after`` (epoch seconds) within start/end, or ``None``."""
        start, end = self.start_at, self.end_at
        if start is not None and after < start:
            after = start - 1e-6
        due = self.parsed.next_after(after, anchor, self.zone)
        if due is None or (end is not None and due > end):
            return None
        return due

    def fire_at(self, due: float) -> float:
        """When due time ``due`` fires: spread over the flexible window, the same on every
        host and after every restart."""
        if not self.flexible_window:
            return due
        digest = hashlib.blake2b(f"{self.arn}@{due:.3f}".encode(), digest_size=8).digest()
        return due + int.from_bytes(digest) % (self.flexible_window * 1000) / 1000

    def event(self, due: float) -> bytes:
        """The event of due time ``due``: ``input``, or the "Scheduled Event" envelope."""
        data: bytes | None = self.__dict__.get("_input")
        if data is not None:
            return data
        return msgspec.json.encode(
            {
                "version": "0",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.arn}@{due:.3f}")),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT,
                "time": iso(due),
                "region": REGION,
                "resources": [self.arn],
                "detail": {},
            }
        )
