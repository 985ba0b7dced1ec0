"""Runtime hooks of ``snapstart=True`` functions, as Lambda's runtime hooks API has them::

    from eventrouter.snapstart import register_after_restore, register_before_snapshot

    @register_before_snapshot
    def close_pool() -> None:      # runs once, in the template, before it is snapshotted
        pool.close()

    @register_after_restore
    def reconnect() -> None:       # runs in every restored environment, before its first event
        global pool
        pool = connect()

A function with ``snapstart=True`` (``isolation="process"``) is imported and initialised once
per router, in a template process; each new execution environment is a ``fork`` of it (a
"restore"). ``before_snapshot`` hooks run in the template after init, in the reverse order of
registration; ``after_restore`` hooks in each restored environment, in registration order.
Python's ``random`` is re-seeded in each restored environment by Python itself; other
generators and anything unique (ids made at import, connections) belong in an
``after_restore`` hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[[], Any])

_before_snapshot: list[Callable[[], Any]] = []
_after_restore: list[Callable[[], Any]] = []


def register_before_snapshot(hook: F) -> F:
    """Run ``hook`` (no arguments) in the template before environments are forked from it."""
    _before_snapshot.append(hook)
    return hook


def register_after_restore(hook: F) -> F:
    """Run ``hook`` (no arguments) in each restored environment before its first invocation."""
    _after_restore.append(hook)
    return hook


def before_snapshot_hooks() -> list[Callable[[], Any]]:
    return list(reversed(_before_snapshot))


def after_restore_hooks() -> list[Callable[[], Any]]:
    return list(_after_restore)
