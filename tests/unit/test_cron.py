"""Cron, rate and at arithmetic: AWS's documented examples, cronsim as the reference, DST."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from eventrouter.errors import ConfigError
from eventrouter.sources.schedule.cron import Cron
from eventrouter.sources.schedule.expressions import parse_expression

UTC_ZONE = ZoneInfo("UTC")


def fires(expression: str, after: datetime, n: int = 5, tz: str = "UTC") -> list[datetime]:
    zone = ZoneInfo(tz)
    expr = parse_expression(expression)
    t = after.replace(tzinfo=zone).timestamp()
    out = []
    for _ in range(n):
        nxt = expr.next_after(t, 0.0, zone)
        if nxt is None:
            break
        out.append(datetime.fromtimestamp(nxt, zone).replace(tzinfo=None))
        t = nxt
    return out


# EventBridge's documented examples (the "Cron expressions" table of the user guide).
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 10 * * ? *)", ["2026-12-04 10:00", "2026-12-05 10:00"]),
        ("cron(15 12 * * ? *)", ["2026-12-04 12:15", "2026-12-05 12:15"]),
        ("cron(0 18 ? * MON-FRI *)", ["2026-12-04 18:00", "2026-12-07 18:00"]),
        ("cron(0 8 1 * ? *)", ["2027-01-01 08:00", "2027-02-01 08:00"]),
        ("cron(0/15 * * * ? *)", ["2026-12-03 23:15", "2026-12-03 23:30"]),
        ("cron(0/10 * ? * MON-FRI *)", ["2026-12-03 23:10", "2026-12-03 23:20"]),
        ("cron(0/5 8-17 ? * MON-FRI *)", ["2026-12-04 08:00", "2026-12-04 08:05"]),
        ("cron(0 9 ? * 2#1 *)", ["2026-12-07 09:00", "2027-01-04 09:00"]),
        ("cron(0 0 L * ? *)", ["2026-12-31 00:00", "2027-01-31 00:00", "2027-02-28 00:00"]),
        ("cron(0 0 LW * ? *)", ["2026-12-31 00:00", "2027-01-29 00:00"]),
        ("cron(0 0 ? * 6L *)", ["2026-12-25 00:00", "2027-01-29 00:00"]),
        ("cron(0 0 ? * L *)", ["2026-12-05 00:00", "2026-12-12 00:00"]),
        # 2027-05-01 is a Saturday: 1W is Monday the 3rd; 2027-01-31 is a Sunday: 31W is Friday.
        ("cron(0 0 1W 5 ? *)", ["2027-05-03 00:00", "2028-05-01 00:00"]),
        ("cron(0 0 31W 1 ? *)", ["2027-01-29 00:00", "2028-01-31 00:00"]),
        ("cron(30 2 29 2 ? *)", ["2028-02-29 02:30", "2032-02-29 02:30"]),
        ("cron(0 12 * * ? 2027-2028)", ["2027-01-01 12:00", "2027-01-02 12:00"]),
        ("cron(0 12 1 JAN ? 2030/2)", ["2030-01-01 12:00", "2032-01-01 12:00"]),
        ("rate(5 minutes)", ["2026-12-03 23:05", "2026-12-03 23:10"]),
        ("rate(1 day)", ["2026-12-04 00:00", "2026-12-05 00:00"]),
        ("rate(2 seconds)", ["2026-12-03 23:00:02", "2026-12-03 23:00:04"]),
        ("at(2027-01-01T00:00:00)", ["2027-01-01 00:00"]),
    ],
)
def test_documented_examples(expression: str, expected: list[str]) -> None:
    # An anchor of 0 makes rate(...) fire on whole multiples of its period since the epoch.
    got = fires(expression, datetime(2026, 12, 3, 23, 0), n=len(expected))
    assert [d.strftime("%Y-%m-%d %H:%M" + (":%S" if d.second else "")) for d in got] == expected


def test_at_fires_once_and_rate_counts_from_its_anchor() -> None:
    assert fires("at(2026-12-04T09:30:00)", datetime(2026, 12, 3), n=3) == [
        datetime(2026, 12, 4, 9, 30)
    ]
    rate = parse_expression("rate(3 hours)")
    anchor = datetime(2026, 12, 3, 1, 17, tzinfo=UTC).timestamp()
    assert rate.next_after(anchor - 5, anchor, UTC_ZONE) == anchor
    assert rate.next_after(anchor, anchor, UTC_ZONE) == anchor + 3 * 3600
    assert rate.next_after(anchor + 3 * 3600 - 1, anchor, UTC_ZONE) == anchor + 3 * 3600


def _to_cronsim(fields: list[str]) -> str:
    """An AWS expression (year '*') in cronsim's 5-field syntax: Sunday is 0, '?' is '*'."""

    def day(item: str) -> str:  # "3", "2-6", "2#1", "6L"
        if item in ("*", "?"):
            return "*"
        if "-" in item:
            a, b = item.split("-")
            return f"{int(a) - 1}-{int(b) - 1}"
        digits = item.rstrip("L").split("#")[0]
        return str(int(digits) - 1) + item[len(digits) :]

    minute, hour, dom, month, dow = fields[:5]
    dow = ",".join(day(item) for item in dow.split(","))
    return " ".join(f.replace("?", "*") for f in (minute, hour, dom, month, dow))


def _random_expression(rng: random.Random) -> list[str]:
    def pick(low: int, high: int) -> str:
        kind = rng.choice(["*", "n", "range", "list", "step"])
        if kind == "*":
            return "*"
        if kind == "n":
            return str(rng.randint(low, high))
        if kind == "range":
            a = rng.randint(low, high)
            return f"{a}-{rng.randint(a, high)}"
        if kind == "list":
            return ",".join(str(v) for v in sorted(rng.sample(range(low, high + 1), 3)))
        return f"{rng.randint(low, high)}/{rng.randint(1, 10)}"

    minute, hour, month = pick(0, 59), pick(0, 23), pick(1, 12)
    if rng.random() < 0.5:
        dom = rng.choice([pick(1, 31), "L", "LW"])
        dow = "?"
    else:
        dom = "?"
        dow = rng.choice(
            [pick(1, 7), f"{rng.randint(1, 7)}#{rng.randint(1, 5)}", f"{rng.randint(1, 7)}L"]
        )
        if "/" in dow:  # cronsim reads a day-of-week step from 0, AWS from 1
            dow = str(rng.randint(1, 7))
    return [minute, hour, dom, month, dow, "*"]


def test_agrees_with_cronsim_on_random_expressions() -> None:
    rng = random.Random(16)
    checked = 0
    for _ in range(300):
        fields = _random_expression(rng)
        start = datetime(2026, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23))
        reference = CronSim(_to_cronsim(fields), start)
        ours = Cron(" ".join(fields)).iter_after(start)
        for _ in range(8):
            try:
                expected = next(reference)
            except (StopIteration, Exception):
                break
            if expected.year > 2199:
                break
            assert next(ours) == expected, " ".join(fields)
            checked += 1
    assert checked > 1500


# Europe/Paris: 2027-03-28 02:00 -> 03:00 (02:xx does not exist); 2027-10-31 03:00 -> 02:00
# (02:xx happens twice).
def test_dst_spring_forward_skips_the_missing_time() -> None:
    got = fires("cron(30 2 * * ? *)", datetime(2027, 3, 26, 12), n=3, tz="Europe/Paris")
    assert got == [
        datetime(2027, 3, 27, 2, 30),
        datetime(2027, 3, 29, 2, 30),
        datetime(2027, 3, 30, 2, 30),
    ]


def test_dst_fall_back_fires_once() -> None:
    zone = ZoneInfo("Europe/Paris")
    expr = parse_expression("cron(*/20 2 * * ? *)")
    t = datetime(2027, 10, 31, 1, 0, tzinfo=zone).timestamp()
    instants = []
    for _ in range(4):
        nxt = expr.next_after(t, 0.0, zone)
        assert nxt is not None
        instants.append(nxt)
        t = nxt
    walls = [datetime.fromtimestamp(i, zone).strftime("%d %H:%M %Z") for i in instants]
    # 02:00, 02:20, 02:40 once each (CEST, the first pass); the repeated hour fires nothing.
    assert walls == ["31 02:00 CEST", "31 02:20 CEST", "31 02:40 CEST", "01 02:00 CET"]


def test_hourly_cron_across_fall_back_keeps_one_hour_spacing_in_wall_time() -> None:
    got = fires("cron(0 * * * ? *)", datetime(2027, 10, 31, 0, 30), n=4, tz="Europe/Paris")
    assert [d.hour for d in got] == [1, 2, 3, 4]


def test_rate_ignores_the_time_zone() -> None:
    zone = ZoneInfo("Europe/Paris")
    expr = parse_expression("rate(1 hour)")
    start = datetime(2027, 10, 31, 0, 0, tzinfo=zone).timestamp()
    t, gaps = start, []
    for _ in range(4):
        nxt = expr.next_after(t, start, zone)
        assert nxt is not None
        gaps.append(nxt - t)
        t = nxt
    assert gaps == [3600.0] * 4


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 25 * * ? *)", "cron(0 25 * * ? *): Hours: 25 is out of range 0-23"),
        ("cron(0 2 * * * *)", "exactly one of them must be '?'"),
        ("cron(0 2 ? * ? *)", "exactly one of them must be '?'"),
        ("cron(0 2 * *)", "takes 6 fields"),
        ("cron(61 2 * * ? *)", "Minutes: 61 is out of range 0-59"),
        ("cron(0 2 * FOO ? *)", "Month: 'FOO' is not a number or a name"),
        ("cron(0 2 ? * 8 *)", "Day-of-week: 8 is out of range 1-7"),
        ("cron(0 2 ? * 2#6 *)", "the number after '#' is 1-5"),
        ("cron(0 2 L,3 * ? *)", "cannot be part of a list"),
        ("cron(0 2 * * ? 1900)", "Year: 1900 is out of range 1970-2199"),
        ("cron(0/0 2 * * ? *)", "the step after '/' must be a number > 0"),
        ("cron(5-1 2 * * ? *)", "the range runs backwards"),
        ("cron(? 2 * * ? *)", "'?' is allowed in Day-of-month or Day-of-week only"),
        ("rate(5 minute)", "write 5 minutes"),
        ("rate(1 minutes)", "write 1 minute"),
        ("rate(0 minutes)", "positive"),
        ("rate(5 weeks)", "unknown unit"),
        ("at(2026-13-01T00:00:00)", "month must be in 1..12"),
        ("every day", "use rate(N unit)"),
    ],
)
def test_malformed_expressions_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_expression(expression)
    assert message in str(info.value)


def test_error_gives_the_position() -> None:
    with pytest.raises(ConfigError) as info:
        parse_expression("cron(0 25 * * ? *)")
    text = "cron(0 25 * * ? *)"
    assert f"(at column {text.index('25') + 1})" in str(info.value)
