"""Exponential backoff, the one schedule every wait-and-retry in the router uses."""

from __future__ import annotations


def backoff(n: int, first: float = 1.0, longest: float = 300.0) -> float:
    """The wait before try ``n + 1`` after ``n`` failures: ``first``, doubling, at most ``longest``.

    The exponent is bounded so that a retry that never ends (``max_retries=-1``) cannot
    overflow a float after a thousand failures.
    """
    return min(longest, first * 2.0 ** min(max(n - 1, 0), 60))
