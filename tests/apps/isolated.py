"""Functions run in process environments (``isolation="process"``), for the tests of issue 7."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
from typing import Any

import msgspec

from eventrouter import Router

router = Router("isolated", max_concurrency=8)

INITS = 0


class Order(msgspec.Struct):
    id: int
    amount: float


def warm_up() -> None:
    """The init hook: runs once per environment."""
    global INITS
    INITS += 1


@router.on_event(None, isolation="process", timeout=5, init=warm_up)
async def whoami(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "inits": INITS,
        "remaining_ms": ctx.get_remaining_time_in_millis(),
        "function": ctx.function_name,
        "request_id": ctx.aws_request_id,
        "memory": ctx.memory_limit_in_mb,
        "echo": event.get("echo"),
    }


@router.on_event(None, isolation="process", timeout=10, init=warm_up)
def gate(event: dict[str, str]) -> dict[str, int]:
    """Says it is in by connecting to the test's Unix socket, then waits for its word."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(event["socket"])
        sock.recv(2)
    return {"pid": os.getpid(), "inits": INITS}


@router.on_event(None, isolation="process")
async def total(order: Order) -> float:
    """A typed handler: the payload is validated inside the environment."""
    return order.amount * 2


@router.on_event(None, isolation="process", timeout=0.5)
def spin(event: Any) -> None:
    """CPU-bound and never yields: only a kill stops it."""
    if event == "quick":
        return None
    while True:
        pass


@router.on_event(None, isolation="process", memory_mb=128)
def hog(event: dict[str, int]) -> dict[str, int]:
    data = bytearray(event["mb"] << 20)
    return {"pid": os.getpid(), "bytes": len(data)}


@router.on_event(None, isolation="process")
def crash(event: dict[str, str]) -> dict[str, int]:
    how = event.get("how")
    if how == "segfault":
        ctypes.string_at(0)
    elif how == "exit":
        os._exit(3)
    elif how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return {"pid": os.getpid()}


@router.on_event(None, isolation="process", idle_timeout=0.2)
async def brief(event: Any) -> int:
    return os.getpid()


@router.on_event(None, isolation="process")
async def caller(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Calls back into the router from its environment."""
    doubled = await ctx.invoke("total", {"id": 1, "amount": event["amount"]})
    queued = await ctx.invoke_async("brief", {})
    return {"doubled": doubled, "queued": queued}


def failing_init() -> None:
    raise RuntimeError("init refused: no database")


class Click(msgspec.Struct):
    p: int
    n: int
    poison: bool = False


def count_click(click: Click) -> None:
    """A per-record Kafka handler: one record at a time, inside its environment."""
    if click.poison:
        raise ValueError(f"poison click {click.n}")


async def traced(event: Any, ctx: Any) -> dict[str, Any]:
    """What an environment knows of its invocation's trace, and a call back into the router
    (which must continue that trace)."""
    await ctx.invoke("noted", {})
    return {"env": os.environ.get("_X_AMZN_TRACE_ID"), "ctx": ctx.trace_id}
