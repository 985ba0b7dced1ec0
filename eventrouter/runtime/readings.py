"""A reading: every number of a running router at one moment, for ``/metrics`` and the dashboard.

Taken when asked (a scrape, the dashboard's sampler), never on the invocation path: the
counters and histograms of :mod:`~eventrouter.observability.metrics`, the slots in use, the
durable queue's depth per queue, and what each pull source knows (pollers, lag).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from eventrouter.observability.metrics import FunctionMetrics, cpu_seconds
from eventrouter.runtime.policies.port import PolicyPort

if TYPE_CHECKING:
    from eventrouter.contract.spec import Running
    from eventrouter.control.mappings import Mappings


class FunctionReading(msgspec.Struct):
    name: str
    source: str
    memory_mb: int
    timeout: float
    reserved: int | None
    in_flight: int
    invocations: int
    errors: int
    throttles: int
    #: Per-bucket counts (``metrics.DURATION_BOUNDS_MS`` and +Inf) and the sum, ms. Tuples:
    #: the garbage collector stops tracking them, and the history keeps hundreds.
    duration: tuple[int, ...]
    duration_sum: float
    billed_ms: int
    init: tuple[int, ...]
    init_sum: float
    async_age: tuple[int, ...]
    async_age_sum: float
    #: Streams: the largest ``IteratorAge`` over partitions (ms) and the summed offset lag.
    iterator_age_ms: int | None = None
    offset_lag: int | None = None
    #: Polled queues and notification feeds: the pollers running.
    pollers: int | None = None
    #: Process environments: started, and busy with an invocation.
    environments: int | None = None
    environments_busy: int | None = None
    #: Provisioned concurrency: environments kept warm, and those busy.
    provisioned: int | None = None
    provisioned_busy: int | None = None


class Reading(msgspec.Struct):
    at: float
    router: str
    functions: list[FunctionReading]
    #: Store queue → (events, enqueued_at of the oldest or ``None``).
    queues: dict[str, tuple[int, float | None]]
    max_concurrency: int
    in_flight: int
    #: Slots shared by functions without a reservation, and how many are in use.
    unreserved: int
    unreserved_in_flight: int
    #: Every counter: metric → function → count.
    counters: dict[str, dict[str, int]]
    #: CPU seconds of the router process and of the processes it waited for.
    cpu_seconds: float


class Observed(PolicyPort, Protocol):
    """What a reading reads of a running router (the engine implements it)."""

    #: One policy per pull-sourced function: lag, pollers.
    @property
    def streams(self) -> Sequence[Any]: ...

    #: What each started source left running, by function.
    @property
    def running(self) -> Mapping[str, Running]: ...

    @property
    def mappings(self) -> Mappings: ...


async def take(runtime: Observed, *, queues: bool = True) -> Reading:
    """Read the runtime's numbers now (``queues=False`` skips the store's depths)."""
    depths = await runtime.store.depths() if queues else {}
    metrics = runtime.metrics
    counters = metrics.snapshot()
    sources: dict[str, dict[str, Any]] = {}
    for policy in runtime.streams:
        name = policy.state.spec.name
        found = sources.setdefault(name, {})
        if hasattr(policy, "update_lag"):
            lag = policy.update_lag()
            ages = policy.iterator_age
            found["offset_lag"] = sum(lag.values()) if lag else None
            found["iterator_age_ms"] = max(ages.values()) if ages else None
        if hasattr(policy, "running"):
            found["pollers"] = policy.running
    for name, running in runtime.running.items():
        sources.setdefault(name, {}).update(running.readings())
    functions = []
    empty = FunctionMetrics()
    for name, state in runtime.invoker.states.items():
        spec = state.spec
        numbers = metrics.functions.get(name, empty)
        extra = sources.get(name, {})
        pool = state.pool
        if pool is not None:
            extra["environments"] = len(pool.environments)
            extra["environments_busy"] = len(pool.environments) - len(pool.idle)
            if pool.provisioned:
                extra["provisioned"] = pool.provisioned_ready
                extra["provisioned_busy"] = pool.provisioned_busy
        functions.append(
            FunctionReading(
                name=name,
                source=_source(runtime, name),
                memory_mb=spec.settings.memory_mb,
                timeout=spec.settings.timeout,
                reserved=state.slots.reserved,  # as changed at run time, if it was
                in_flight=state.slots.in_flight,
                invocations=numbers.invocations,
                errors=counters.get("Errors", {}).get(name, 0),
                throttles=counters.get("Throttles", {}).get(name, 0),
                duration=tuple(numbers.duration.counts),
                duration_sum=numbers.duration.sum,
                billed_ms=numbers.billed_ms,
                init=tuple(numbers.init.counts),
                init_sum=numbers.init.sum,
                async_age=tuple(numbers.async_age.counts),
                async_age_sum=numbers.async_age.sum,
                **extra,
            )
        )
    slots = runtime.slots
    return Reading(
        at=time.time(),
        router=runtime.router.name,
        functions=functions,
        queues=depths,
        max_concurrency=slots.max_concurrency,
        in_flight=slots.total_in_flight,
        unreserved=slots.pool,
        unreserved_in_flight=slots.pool_in_flight,
        counters=counters,
        cpu_seconds=cpu_seconds(),
    )


def _source(runtime: Observed, name: str) -> str:
    """The function's source as the dashboard shows it: disabled when its event source
    mapping is (``UpdateEventSourceMapping``)."""
    source = runtime.router.functions[name].source
    if source is None:
        return "direct"
    mapping = runtime.mappings.find(name)
    return source.describe() + (
        " (disabled)" if mapping is not None and not mapping.enabled else ""
    )
