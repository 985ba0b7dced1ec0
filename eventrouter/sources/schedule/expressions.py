"""Schedule expressions: ``rate(...)``, ``cron(...)`` and ``at(...)``, and their due times.

Due times are instants (epoch seconds). Cron and ``at`` expressions are read in the
schedule's time zone the way EventBridge Scheduler reads them across daylight saving time: a
wall time that does not exist (the hour skipped in spring) is skipped; a wall time that
happens twice (the hour repeated in autumn) fires once, at its first occurrence. Rates count
elapsed time from an anchor and know no time zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from eventrouter.sources.schedule.cron import Cron, CronError

_RATE = re.compile(r"rate\(\s*(\d+)\s+([a-z]+)\s*\)\Z")
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}
_AT = re.compile(r"at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)\Z")


class Rate:
    """``rate(N unit)``: every ``period`` seconds after the anchor."""

    kind = "rate"

    def __init__(self, period: int) -> None:
        self.period = period

    def next_after(self, after: float, anchor: float, tz: ZoneInfo) -> float | None:
        if after < anchor:
            return anchor
        steps = int((after - anchor) // self.period) + 1
        return anchor + steps * self.period


class CronExpression:
    """``cron(...)`` in a time zone."""

    kind = "cron"

    def __init__(self, cron: Cron) -> None:
        self.cron = cron

    def next_after(self, after: float, anchor: float, tz: ZoneInfo) -> float | None:
        wall = datetime.fromtimestamp(after, tz).replace(tzinfo=None)
        for candidate in self.cron.iter_after(wall):
            instant = wall_instant(candidate, tz)
            if instant is not None and instant > after:
                return instant
        return None


class At:
    """``at(yyyy-mm-ddThh:mm:ss)``: once."""

    kind = "at"

    def __init__(self, when: datetime) -> None:
        self.when = when

    def next_after(self, after: float, anchor: float, tz: ZoneInfo) -> float | None:
        instant = self.when.replace(tzinfo=tz).timestamp()
        return instant if instant > after else None


Expression = Rate | CronExpression | At


def parse_expression(text: object) -> Expression:
    """Parse a schedule expression; ``ConfigError`` (a ``CronError``) says what is wrong."""
    if not isinstance(text, str):
        raise CronError(f"schedule expression {text!r} must be a string")
    text = text.strip()
    if text.startswith("cron(") and text.endswith(")"):
        return CronExpression(Cron(text[5:-1]))
    if text.startswith("rate("):
        match = _RATE.match(text)
        if match is None:
            raise CronError(
                f"{text}: write rate(N unit) with unit one of second(s), minute(s), hour(s), day(s)"
            )
        value, unit = int(match[1]), match[2]
        singular = unit.removesuffix("s")
        if singular not in _UNITS:
            raise CronError(f"{text}: unknown unit {unit!r}; use seconds, minutes, hours or days")
        if value < 1:
            raise CronError(f"{text}: the value must be a positive whole number")
        if (value == 1) != (unit == singular):
            want = singular if value == 1 else singular + "s"
            raise CronError(f"{text}: write {value} {want} (EventBridge's rule)")
        return Rate(value * _UNITS[singular])
    if text.startswith("at("):
        match = _AT.match(text)
        if match is None:
            raise CronError(f"{text}: write at(yyyy-mm-ddThh:mm:ss)")
        try:
            year, month, day, hour, minute, second = (int(g) for g in match.groups())
            when = datetime(year, month, day, hour, minute, second)
        except ValueError as exc:
            raise CronError(f"{text}: {exc}") from None
        return At(when)
    raise CronError(
        f"schedule expression {text!r}: use rate(N unit), cron(m h dom mon dow year) or "
        "at(yyyy-mm-ddThh:mm:ss)"
    )


def wall_instant(wall: datetime, tz: ZoneInfo) -> float | None:
    """The instant of naive wall time ``wall`` in ``tz``: its first occurrence, or ``None``
    when daylight saving time skips it."""
    aware = wall.replace(tzinfo=tz, fold=0)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
        return None
    return aware.timestamp()


def iso(instant: float) -> str:
    """``2026-12-03T02:00:00Z``: how EventBridge writes an event's ``time``."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_instant(value: object, tz: ZoneInfo, field: str) -> float:
    """A ``start``/``end`` setting: an aware or naive (read in ``tz``) datetime, ISO text, or
    epoch seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.replace(".", "", 1).isdigit():
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise CronError(f"{field}={value!r} is not an ISO 8601 date and time") from None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).timestamp()
    raise CronError(f"{field}={value!r} must be a datetime, ISO 8601 text or epoch seconds")


__all__ = ["At", "CronExpression", "Expression", "Rate", "iso", "parse_expression"]
