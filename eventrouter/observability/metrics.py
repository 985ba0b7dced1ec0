"""Counters the router keeps, named as CloudWatch names Lambda's metrics."""

from __future__ import annotations

from collections import Counter


class Metrics:
    """Plain counters keyed by ``(metric, function)``; cheap enough for the hot path.

    >>> metrics = Metrics()
    >>> metrics.add("Errors", "charge")
    >>> metrics.get("Errors", "charge")
    1
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

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
        return out
