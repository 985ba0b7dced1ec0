"""The dashboard's data: rates, percentiles and series computed from the history of readings.

``GET /dashboard`` is one static page (``dashboard.html``: inline script and SVG, no external
asset) that asks ``GET /dashboard/data`` for this document every second.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from eventrouter.observability.metrics import DURATION_BOUNDS_MS
from eventrouter.observability.usage import charge, prices
from eventrouter.runtime.readings import FunctionReading, Reading

if TYPE_CHECKING:
    from eventrouter.observability.metrics import Metrics
    from eventrouter.observability.usage import UsageLedger

#: Rates are over the last RATE_WINDOW seconds, percentiles over the last PERCENTILE_WINDOW;
#: series cover SERIES_WINDOW seconds in steps of SERIES_STEP.
RATE_WINDOW = 10.0
PERCENTILE_WINDOW = 60.0
SERIES_WINDOW = 300.0
SERIES_STEP = 5.0


def page() -> bytes:
    return resources.files("eventrouter.observability").joinpath("dashboard.html").read_bytes()


def quantile(
    q: float, counts: Sequence[int], bounds: tuple[float, ...] = DURATION_BOUNDS_MS
) -> float:
    """The ``q`` quantile of a histogram's bucket counts, interpolated within its bucket (as
    Prometheus' ``histogram_quantile``); 0 for an empty histogram.

    >>> quantile(0.5, [0, 10, 0], (1.0, 2.0))
    1.5
    """
    total = sum(counts)
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if seen + count >= rank and count:
            lower = 0.0 if i == 0 else bounds[i - 1]
            if i == len(bounds):  # +Inf: the highest finite bound is all we know
                return bounds[-1]
            return lower + (bounds[i] - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]


def _delta(new: Sequence[int], old: Sequence[int] | None) -> list[int]:
    return list(new) if old is None else [a - b for a, b in zip(new, old, strict=True)]


def _at(readings: list[Reading], seconds_back: float) -> Reading:
    """The oldest reading not older than ``seconds_back`` before the latest."""
    cutoff = readings[-1].at - seconds_back
    for reading in readings:
        if reading.at >= cutoff:
            return reading
    return readings[-1]


def _by_name(reading: Reading) -> dict[str, FunctionReading]:
    return {f.name: f for f in reading.functions}


def data(
    readings: list[Reading], started: float, metrics: Metrics, usage: UsageLedger | None
) -> dict[str, Any]:
    """The dashboard's document (see the module's text) from readings, oldest first."""
    if not readings:
        return {"router": None, "functions": [], "failures": []}
    latest = readings[-1]
    now = _by_name(latest)
    rate_from = _at(readings, RATE_WINDOW)
    rate_span = max(1e-9, latest.at - rate_from.at)
    rate_old = _by_name(rate_from)
    pct_old = _by_name(_at(readings, PERCENTILE_WINDOW))
    # Series step every few seconds over the kept readings (the last one, taken now, would
    # make a step of a fraction of a second: a noisy rate).
    steps = _series_points(readings[:-1] if len(readings) > 2 else readings)
    table = prices()
    functions = []
    for name, f in now.items():
        old = rate_old.get(name)
        durations = _delta(f.duration, pct_old[name].duration if name in pct_old else None)
        gb_seconds = f.billed_ms / 1000 * f.memory_mb / 1024
        queue = latest.queues.get(f"fn:{name}")
        functions.append(
            {
                "name": name,
                "source": f.source,
                "memory_mb": f.memory_mb,
                "timeout": f.timeout,
                "reserved": f.reserved,
                "in_flight": f.in_flight,
                "invocations": f.invocations,
                "errors": f.errors,
                "throttles": f.throttles,
                "rates": {
                    key: (getattr(f, key) - (getattr(old, key) if old else 0)) / rate_span
                    for key in ("invocations", "errors", "throttles")
                },
                "p50_ms": quantile(0.5, durations),
                "p99_ms": quantile(0.99, durations),
                "queue_depth": queue[0] if queue else 0,
                "oldest_age_s": latest.at - queue[1] if queue and queue[1] else None,
                "pollers": f.pollers,
                "offset_lag": f.offset_lag,
                "iterator_age_ms": f.iterator_age_ms,
                "environments": f.environments,
                "environments_busy": f.environments_busy,
                "usage": {
                    "requests": f.invocations,
                    "gb_seconds": gb_seconds,
                    "x86_64": charge(f.invocations, gb_seconds, "x86_64", table),
                    "arm64": charge(f.invocations, gb_seconds, "arm64", table),
                },
                "series": _series(name, steps),
            }
        )
    return {
        "router": latest.router,
        "at": latest.at,
        "started": started,
        "in_flight": latest.in_flight,
        "max_concurrency": latest.max_concurrency,
        "queues": {q: {"depth": n, "oldest": t} for q, (n, t) in latest.queues.items()},
        "functions": functions,
        "failures": [f.as_dict() for f in reversed(metrics.failures)],
        "usage_last_day": None if usage is None or usage.last_day is None else usage.last_day,
        "prices_as_of": table["as_of"],
    }


def _series_points(readings: list[Reading]) -> list[Reading]:
    """One reading per :data:`SERIES_STEP` over the last :data:`SERIES_WINDOW` seconds."""
    latest = readings[-1].at
    points: list[Reading] = []
    for reading in readings:
        if latest - reading.at > SERIES_WINDOW:
            continue
        if not points or reading.at - points[-1].at >= SERIES_STEP - 0.5:
            points.append(reading)
    if points[-1] is not readings[-1]:
        points.append(readings[-1])
    return points


def _series(name: str, points: list[Reading]) -> dict[str, list[Any]]:
    """Per step: invocations, errors and throttles per second; in-flight, lag, pollers."""
    out: dict[str, list[Any]] = {
        "t": [],
        "invocations": [],
        "errors": [],
        "throttles": [],
        "in_flight": [],
        "lag": [],
        "pollers": [],
        "depth": [],
    }
    previous: FunctionReading | None = None
    previous_at = 0.0
    for reading in points:
        f = _by_name(reading).get(name)
        if f is None:
            continue
        if previous is not None:
            span = max(1e-9, reading.at - previous_at)
            out["t"].append(round(reading.at, 3))
            for key in ("invocations", "errors", "throttles"):
                out[key].append(round((getattr(f, key) - getattr(previous, key)) / span, 3))
            out["in_flight"].append(f.in_flight)
            out["lag"].append(f.offset_lag if f.offset_lag is not None else f.iterator_age_ms)
            out["pollers"].append(f.pollers)
            queue = reading.queues.get(f"fn:{name}")
            out["depth"].append(queue[0] if queue else 0)
        previous, previous_at = f, reading.at
    return out
