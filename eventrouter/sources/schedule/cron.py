"""EventBridge's cron expressions: parsed with errors that name the field, matched in wall time.

``cron(Minutes Hours Day-of-month Month Day-of-week Year)``, as EventBridge and EventBridge
Scheduler write it:

=============  ========================  ===================
field          values                    wildcards
=============  ========================  ===================
Minutes        0-59                      ``, - * /``
Hours          0-23                      ``, - * /``
Day-of-month   1-31                      ``, - * ? / L W``
Month          1-12 or JAN-DEC           ``, - * /``
Day-of-week    1-7 or SUN-SAT (SUN = 1)  ``, - * ? L #``
Year           1970-2199                 ``, - * /``
=============  ========================  ===================

One of Day-of-month and Day-of-week is ``?``, never both and never neither. ``L`` is the
last day of the month (``LW`` its last weekday), ``15W`` the weekday nearest the 15th within
the month, ``L`` alone in Day-of-week is Saturday, ``6L`` the month's last Friday and
``3#2`` its second Tuesday.

No library fits this syntax (Sunday = 1, the year field, ``?``, errors naming the field), so
the parser and the matcher are ours; the tests check them against cronsim, a well-kept cron
library, on translated expressions.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from eventrouter.errors import ConfigError

FIELDS = ("Minutes", "Hours", "Day-of-month", "Month", "Day-of-week", "Year")
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199))
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, _MONTHS, _DAYS, {})
LAST_YEAR = 2199


class CronError(ConfigError):
    """A malformed cron expression: the field, the text and where it starts."""


class _Field:
    """One field's allowed values plus its special (``L``, ``W``, ``#``) items."""

    __slots__ = ("any", "last", "last_weekday", "nearest", "nth", "values")

    def __init__(self) -> None:
        self.values: set[int] = set()
        self.any = False  # ``?`` (or ``*`` in a day field the other one restricts)
        self.last = False  # ``L`` in Day-of-month
        self.last_weekday = False  # ``LW``
        self.nearest: set[int] = set()  # ``nW``
        self.nth: set[tuple[int, int]] = set()  # ``d#n`` and ``dL`` (n = -1) in Day-of-week


class Cron:
    """A parsed cron expression; :meth:`next_after` gives the next matching wall time.

    >>> Cron("0 2 * * ? *").next_after(datetime(2026, 12, 3, 23, 5))
    datetime.datetime(2026, 12, 4, 2, 0)
    """

    def __init__(self, text: str) -> None:
        self.text = text
        parts: list[tuple[str, int]] = []
        pos = 0
        for token in text.split():
            pos = text.index(token, pos)
            parts.append((token, pos))
            pos += len(token)
        if len(parts) != 6:
            raise CronError(
                f"cron({text}): takes 6 fields (Minutes Hours Day-of-month Month Day-of-week "
                f"Year), got {len(parts)}"
            )
        fields = [self._field(i, token, at) for i, (token, at) in enumerate(parts)]
        dom, dow = fields[2], fields[4]
        dom_q, dow_q = parts[2][0] == "?", parts[4][0] == "?"
        if dom_q == dow_q:
            raise CronError(
                f"cron({text}): Day-of-month and Day-of-week: exactly one of them must be '?' "
                f"(got {parts[2][0]!r} and {parts[4][0]!r})"
            )
        self.minutes = sorted(fields[0].values)
        self.hours = sorted(fields[1].values)
        self.months = sorted(fields[3].values)
        self.years = sorted(fields[5].values)
        #: The day rule: Day-of-month's when Day-of-week is '?', else Day-of-week's.
        self.by_weekday = dom_q
        self.day_rule = dow if dom_q else dom
        self._days: dict[tuple[int, int], list[int]] = {}

    # -- parsing -----------------------------------------------------------------------------

    def _fail(self, index: int, at: int, message: str) -> CronError:
        return CronError(f"cron({self.text}): {FIELDS[index]}: {message} (at column {at + 6})")

    def _number(self, index: int, text: str, at: int) -> int:
        low, high = _RANGES[index]
        value = _NAMES[index].get(text.upper())
        if value is None:
            if not text.isdigit():
                raise self._fail(index, at, f"{text!r} is not a number or a name")
            value = int(text)
        if not low <= value <= high:
            raise self._fail(index, at, f"{text} is out of range {low}-{high}")
        return value

    def _field(self, index: int, token: str, at: int) -> _Field:
        field = _Field()
        low, high = _RANGES[index]
        if token == "?":
            if index not in (2, 4):
                raise self._fail(index, at, "'?' is allowed in Day-of-month or Day-of-week only")
            field.any = True
            return field
        items = token.split(",")
        offset = at
        for item in items:
            self._item(index, item, offset, field, low, high, single=len(items) == 1)
            offset += len(item) + 1
        return field

    def _item(
        self, index: int, item: str, at: int, field: _Field, low: int, high: int, *, single: bool
    ) -> None:
        if not item:
            raise self._fail(index, at, "empty list item")
        special = item.upper()
        if index == 2 and (special in ("L", "LW") or special.endswith("W")):
            if not single:
                raise self._fail(index, at, f"{item!r} cannot be part of a list")
            if special == "L":
                field.last = True
            elif special == "LW":
                field.last_weekday = True
            else:
                field.nearest.add(self._number(index, item[:-1], at))
            return
        if index == 4 and ("#" in item or special.endswith("L")):
            if not single:
                raise self._fail(index, at, f"{item!r} cannot be part of a list")
            if special == "L":
                field.values.add(7)  # Saturday, the last day of the week
                return
            if special.endswith("L"):
                field.nth.add((self._number(index, item[:-1], at), -1))
                return
            day, _, nth = item.partition("#")
            if not nth.isdigit() or not 1 <= int(nth) <= 5:
                raise self._fail(index, at, f"{item!r}: the number after '#' is 1-5")
            field.nth.add((self._number(index, day, at), int(nth)))
            return
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise self._fail(index, at, f"{item!r}: the step after '/' must be a number > 0")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = self._number(index, a, at), self._number(index, b, at)
            if first > last:
                raise self._fail(index, at, f"{item!r}: the range runs backwards")
        else:
            first = self._number(index, base, at)
            last = high if slash else first
        field.values.update(range(first, last + 1, step))

    # -- matching ----------------------------------------------------------------------------

    def days(self, year: int, month: int) -> list[int]:
        """The days of ``month`` that match, in order."""
        key = (year, month)
        cached = self._days.get(key)
        if cached is None:
            cached = self._days[key] = sorted(self._match_days(year, month))
        return cached

    def _match_days(self, year: int, month: int) -> set[int]:
        rule = self.day_rule
        length = calendar.monthrange(year, month)[1]
        if self.by_weekday:
            out = set()
            for day in range(1, length + 1):
                weekday = (date(year, month, day).weekday() + 1) % 7 + 1  # SUN = 1
                if weekday in rule.values:
                    out.add(day)
            for weekday, nth in rule.nth:
                matches = [
                    d
                    for d in range(1, length + 1)
                    if (date(year, month, d).weekday() + 1) % 7 + 1 == weekday
                ]
                if nth == -1:
                    out.add(matches[-1])
                elif nth <= len(matches):
                    out.add(matches[nth - 1])
            return out
        out = {d for d in rule.values if d <= length}
        if rule.last:
            out.add(length)
        if rule.last_weekday:
            out.add(_nearest_weekday(year, month, length, length))
        for day in rule.nearest:
            if day <= length:
                out.add(_nearest_weekday(year, month, day, length))
        return out

    def next_after(self, after: datetime) -> datetime | None:
        """The first matching wall time strictly after ``after`` (naive), or ``None``."""
        t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for year in self.years:
            if year < t.year:
                continue
            for month in self.months:
                if (year, month) < (t.year, t.month):
                    continue
                for day in self.days(year, month):
                    if (year, month, day) < (t.year, t.month, t.day):
                        continue
                    today = (year, month, day) == (t.year, t.month, t.day)
                    for hour in self.hours:
                        if today and hour < t.hour:
                            continue
                        for minute in self.minutes:
                            if today and hour == t.hour and minute < t.minute:
                                continue
                            return datetime(year, month, day, hour, minute)
        return None

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """Every matching wall time after ``after``, in order."""
        t = self.next_after(after)
        while t is not None:
            yield t
            t = self.next_after(t)


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int:
    """The weekday nearest ``day`` without leaving the month (Quartz's and AWS's ``W``)."""
    weekday = date(year, month, day).weekday()  # Monday = 0
    if weekday == 5:  # Saturday: Friday, or Monday when the 1st is a Saturday
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday, or Friday when the month ends on a Sunday
        return day + 1 if day < length else day - 2
    return day
