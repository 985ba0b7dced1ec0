"""Functions that fail, for the tests of what a failure leaves in the router's log."""

from __future__ import annotations

from typing import Any

from eventrouter import Router, to_directory

router = Router("failing")


def _charge(amount: int) -> None:
    raise ValueError(f"cannot charge {amount}")


@router.on_event(None)
async def boom(event: dict[str, Any]) -> None:
    _charge(event.get("amount", 1))


@router.on_event(None)
def boom_in_thread(event: dict[str, Any]) -> None:
    _charge(event.get("amount", 2))


@router.on_event(None, max_retries=0, on_failure=to_directory("failed"))
async def exhausted(event: dict[str, Any]) -> None:
    _charge(3)


@router.on_event(None, max_retries=0)
async def exhausted_nowhere(event: dict[str, Any]) -> None:
    _charge(4)
