"""A no-op handler for the process-isolation benchmark (module level: workers import it)."""

from __future__ import annotations

from typing import Any


async def noop(event: Any) -> None:
    return None


def lambda_noop(event: Any, context: Any) -> None:
    """The same no-op as a Lambda handler, for awslambdaric."""
    return None
