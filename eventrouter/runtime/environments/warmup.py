"""Warming functions up: the Init phase of an inline function, and what is made before the
router is ready (provisioned concurrency, SnapStart templates)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from eventrouter.config import INIT_TIMEOUT
from eventrouter.outcomes import error_body, init_timeout_error

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec
    from eventrouter.runtime.environments.pool import Pool

log = structlog.get_logger("eventrouter")


class Warmable(Protocol):
    """What warming a function reads and sets of its state (the invoker's ``FunctionState``)."""

    spec: FunctionSpec
    pool: Pool | None
    #: Its init hook has run (inline functions).
    warm: bool
    init_lock: asyncio.Lock


async def init_phase(
    state: Warmable, executor: Executor, request_id: str
) -> tuple[dict[str, Any] | None, float | None]:
    """Run an inline function's init hook once (10 s limit): Lambda's error document if it
    failed, else the init duration for the invocation that ran it (``None`` for those that
    waited for it, or came after)."""
    async with state.init_lock:
        if state.warm:
            return None, None
        spec = state.spec
        start = time.monotonic()
        hook = spec.init
        try:
            if hook is not None:
                async with asyncio.timeout(INIT_TIMEOUT):
                    if asyncio.iscoroutinefunction(hook):
                        await hook()
                    else:
                        await asyncio.get_running_loop().run_in_executor(executor, hook)
        except TimeoutError:
            error = init_timeout_error(request_id, INIT_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - init failures are function errors
            error = error_body(exc, request_id)
        else:
            state.warm = True
            return None, spec.import_duration + time.monotonic() - start
        log.error("init failed", function=spec.name, request_id=request_id, error=error)
        return error, None


async def provision(states: Iterable[Warmable], executor: Executor) -> None:
    """Before the router is ready: each SnapStart function's template (its import and init,
    once) and each function's provisioned concurrency (process environments started and
    initialised; an inline function's init hook run)."""
    from eventrouter.events import new_request_id

    starting: list[Awaitable[Any]] = []
    for state in states:
        if state.pool is not None and state.pool.snapstart:
            starting.append(_snapshot(state.pool))
        if not state.spec.settings.provisioned_concurrency:
            continue
        if state.pool is not None:
            state.pool.provisioned = state.spec.settings.provisioned_concurrency
            starting.append(state.pool.provision())
        elif not state.warm:
            starting.append(init_phase(state, executor, new_request_id()))
    await asyncio.gather(*starting)


async def _snapshot(pool: Pool) -> None:
    """Start a SnapStart template; one that fails is logged, and tried again by the first
    cold start (which reports its error)."""
    try:
        await pool.snapshot()
    except Exception as exc:  # noqa: BLE001 - reported, and reported again when invoked
        log.error("snapstart template failed", function=pool.spec.name, error=repr(exc))
