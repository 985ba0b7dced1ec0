"""Shared helpers: repeat a measurement, keep the median, min and max."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable
from importlib import metadata
from typing import Any


def summarize(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def repeat(measure: Callable[[], float], runs: int) -> dict[str, float]:
    return summarize([measure() for _ in range(runs)])


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in ("anyio", "msgspec", "structlog", "uvicorn"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": versions,
    }
