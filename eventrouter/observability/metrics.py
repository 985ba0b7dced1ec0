"""What the router counts, named as CloudWatch names Lambda's metrics.

The hot path only adds to plain Python numbers (a dictionary look-up, a few additions and
one ``bisect`` into a histogram's bounds): nothing is locked, formatted or allocated per
invocation. ``/metrics`` (``observability/exposition.py``) and the dashboard
(``runtime/history.py``) read these numbers when they are asked.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections import Counter, deque
from typing import Any

#: Bucket bounds of ``Duration`` and ``InitDuration`` (milliseconds, Prometheus ``le``).
DURATION_BOUNDS_MS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500,
    1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000,
)  # fmt: skip
#: Bucket bounds of ``AsyncEventAge`` (milliseconds: from 1 ms to Lambda's 6 hours).
AGE_BOUNDS_MS: tuple[float, ...] = (
    1, 10, 50, 100, 500, 1_000, 5_000, 10_000, 60_000, 300_000, 1_800_000, 3_600_000, 21_600_000,
)  # fmt: skip
#: Failures kept for the dashboard.
RECENT_FAILURES = 50


class Histogram:
    """Counts per bucket (not cumulative) and the sum of the observed values."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class FunctionMetrics:
    """The per-invocation numbers of one function."""

    __slots__ = ("async_age", "billed_ms", "duration", "init", "invocations")

    def __init__(self) -> None:
        #: Invocations that ran (errors and timeouts included, throttles not), as Lambda's.
        self.invocations = 0
        self.duration = Histogram(DURATION_BOUNDS_MS)
        #: Billed duration: each invocation rounded up to the next millisecond (REPORT's).
        self.billed_ms = 0
        #: Init durations of cold starts (REPORT's ``Init Duration``).
        self.init = Histogram(DURATION_BOUNDS_MS)
        #: Time from enqueue to each attempt of an asynchronous invocation.
        self.async_age = Histogram(AGE_BOUNDS_MS)


class Failure:
    """One failed invocation or final failure, for the dashboard."""

    __slots__ = ("at", "condition", "error_message", "error_type", "function", "request_id")

    def __init__(
        self,
        function: str,
        request_id: str,
        error_type: str,
        error_message: str,
        condition: str | None = None,
    ) -> None:
        self.at = time.time()
        self.function = function
        self.request_id = request_id
        self.error_type = error_type
        self.error_message = error_message[:500]
        #: For a final record: ``RetriesExhausted``, ``EventAgeExceeded``...
        self.condition = condition

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class Metrics:
    """The router's numbers: counters keyed by ``(metric, function)`` and, while
    ``enabled``, the per-invocation histograms of each function.

    >>> metrics = Metrics()
    >>> metrics.add("Errors", "charge")
    >>> metrics.get("Errors", "charge")
    1
    >>> metrics.invoked("charge", 1.7, 2, None)
    >>> metrics.function("charge").invocations
    1
    """

    def __init__(self, enabled: bool = True) -> None:
        #: Off: invocations are neither counted nor timed nor accounted for usage (the
        #: counters below stay: they cost nothing on a successful invocation).
        self.enabled = enabled
        self.counts: Counter[tuple[str, str]] = Counter()
        self.functions: dict[str, FunctionMetrics] = {}
        #: The latest failures, newest last.
        self.failures: deque[Failure] = deque(maxlen=RECENT_FAILURES)

    def add(self, metric: str, function: str, n: int = 1) -> None:
        self.counts[(metric, function)] += n

    def get(self, metric: str, function: str | None = None) -> int:
        if function is not None:
            return self.counts[(metric, function)]
        return sum(v for (m, _), v in self.counts.items() if m == metric)

    def snapshot(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (metric, function), value in sorted(self.counts.items()):
            out.setdefault(metric, {})[function] = value
        for function, numbers in sorted(self.functions.items()):
            if numbers.invocations:
                out.setdefault("Invocations", {})[function] = numbers.invocations
        return out

    def function(self, name: str) -> FunctionMetrics:
        numbers = self.functions.get(name)
        if numbers is None:
            numbers = self.functions[name] = FunctionMetrics()
        return numbers

    # -- the hot path ----------------------------------------------------------------------

    def invoked(
        self, function: str, duration_ms: float, billed_ms: int, init_ms: float | None
    ) -> None:
        """One invocation ran (its REPORT record was written)."""
        if not self.enabled:
            return
        numbers = self.functions.get(function) or self.function(function)
        numbers.invocations += 1
        duration = numbers.duration
        duration.counts[bisect_left(DURATION_BOUNDS_MS, duration_ms)] += 1
        duration.sum += duration_ms
        numbers.billed_ms += billed_ms
        if init_ms is not None:
            numbers.init.observe(init_ms)

    def async_attempt(self, function: str, age_ms: float, first: bool) -> None:
        """An asynchronous event is about to be invoked, ``age_ms`` after it was queued;
        ``first``: it had not been taken from the queue before (``AsyncEventsReceived``)."""
        if first:
            self.counts[("AsyncEventsReceived", function)] += 1
        if self.enabled:
            self.function(function).async_age.observe(age_ms)

    def failed(self, failure: Failure) -> None:
        self.failures.append(failure)


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its children that ended."""
    children = os.times()
    return time.process_time() + children.children_user + children.children_system
