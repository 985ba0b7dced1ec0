"""An app for the process tests: records every processed event in a file (O_APPEND lines)."""

from __future__ import annotations

import os
from typing import Any

import anyio

from eventrouter import Context, Http, Router

router = Router("durable", max_concurrency=50)
OUT = os.environ.get("DURABLE_OUT", "processed.log")
STARTED = os.environ.get("DURABLE_STARTED", "started.log")


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


@router.on_event(reserved_concurrency=20, max_retries=0)
async def record(event: dict[str, Any], ctx: Context) -> None:
    await anyio.sleep(0.005)
    _append(OUT, str(event["n"]))


@router.on_event(timeout=60)
async def slow(event: dict[str, Any], ctx: Context) -> None:
    _append(STARTED, str(event["n"]))
    await anyio.sleep(float(event["seconds"]))
    _append(OUT, str(event["n"]))


@router.on_event(reserved_concurrency=1, timeout=60)
async def paced(event: dict[str, Any], ctx: Context) -> None:
    """One at a time, so that a backlog builds up."""
    await anyio.sleep(float(event["seconds"]))
    _append(OUT, str(event["n"]))


@router.on_event(Http("GET /sleep/{n}"), timeout=60)
async def sleep_route(event: dict[str, Any], ctx: Context) -> str:
    n = event["pathParameters"]["n"]
    _append(STARTED, n)
    await anyio.sleep(0.5)
    return f"slept {n}"


@router.on_event()
async def echo(event: Any) -> Any:
    return event


@router.on_event()
async def fails(event: Any) -> None:
    raise ValueError("nope")
