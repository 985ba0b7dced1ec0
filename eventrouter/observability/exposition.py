"""``/metrics``: a reading in Prometheus' text format (or OpenMetrics when asked), written by
``prometheus-client``.

Lambda's metrics keep their CloudWatch names and meanings, prefixed ``lambda_`` and labelled
with CloudWatch's dimension ``FunctionName``; the router's own are prefixed ``eventrouter_``.
Counters end in ``_total``, as Prometheus names them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client import exposition as text
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics import exposition as openmetrics

from eventrouter.observability.metrics import AGE_BOUNDS_MS, DURATION_BOUNDS_MS
from eventrouter.runtime.readings import FunctionReading, Reading

#: Counters that are Lambda's own CloudWatch metrics; every other counter is the router's.
LAMBDA_COUNTERS = frozenset(
    {
        "Errors",
        "Throttles",
        "DeadLetterErrors",
        "DestinationDeliveryFailures",
        "AsyncEventsReceived",
        "AsyncEventsDropped",
        "RecursiveInvocationsDropped",
        "ProvisionedConcurrencySpilloverInvocations",
    }
)
#: Their meanings (CloudWatch's), and the router's counters known in advance.
HELP = {
    "Invocations": "Times the function code ran, errors included, throttles not",
    "Errors": "Invocations that ended in a function error or a timeout",
    "Throttles": "Invocation requests refused for lack of concurrency",
    "DestinationDeliveryFailures": "Records that could not be sent to a destination",
    "AsyncEventsReceived": "Asynchronous events taken from the queue for the first time",
    "AsyncEventsDropped": "Asynchronous events dropped without an on_failure destination",
    "AsyncEventsFailed": "Asynchronous events whose final failure went to on_failure",
    "DestinationAccessDenied": "Records the function's role may not send",
    "NotificationsReceived": "SNS or S3 notifications stored as asynchronous events",
    "RecursiveInvocationsDropped": "Invocations stopped as a recursive loop (16 deep)",
    "ProvisionedConcurrencySpilloverInvocations": (
        "Invocations on an on-demand environment while every provisioned one was busy"
    ),
}
FUNCTION = ["FunctionName"]


def render(reading: Reading, accept: str = "") -> tuple[bytes, str]:
    """The reading as exposition text and its content type (OpenMetrics if ``accept`` says)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(reading))
    if "application/openmetrics-text" in accept:
        written: bytes = openmetrics.generate_latest(registry)  # type: ignore[no-untyped-call]
        return written, openmetrics.CONTENT_TYPE_LATEST
    return text.generate_latest(registry), text.CONTENT_TYPE_LATEST


class _Collector:
    def __init__(self, reading: Reading) -> None:
        self.reading = reading

    def collect(self) -> Iterable[Metric]:
        return families(self.reading)


def families(reading: Reading) -> Iterator[Metric]:
    """Every metric family of a reading."""
    functions = reading.functions
    invocations = CounterMetricFamily("lambda_Invocations", HELP["Invocations"], labels=FUNCTION)
    for f in functions:
        invocations.add_metric([f.name], f.invocations)
    yield invocations
    for name in ("Errors", "Throttles"):
        family = CounterMetricFamily(f"lambda_{name}", HELP[name], labels=FUNCTION)
        for f in functions:
            family.add_metric([f.name], getattr(f, name.lower()))
        yield family
    for name, by_function in sorted(reading.counters.items()):
        if name in ("Invocations", "Errors", "Throttles"):
            continue
        prefix = "lambda" if name in LAMBDA_COUNTERS else "eventrouter"
        family = CounterMetricFamily(
            f"{prefix}_{name}", HELP.get(name, f"{name} (the router's counter)"), labels=FUNCTION
        )
        for function, value in sorted(by_function.items()):
            family.add_metric([function], value)
        yield family
    yield _histogram(
        "lambda_Duration_milliseconds",
        "Time the function code ran per invocation (ms)",
        DURATION_BOUNDS_MS,
        [(f.name, f.duration, f.duration_sum) for f in functions],
    )
    yield _histogram(
        "lambda_InitDuration_milliseconds",
        "Cold starts: the handler module's import and init hook (ms)",
        DURATION_BOUNDS_MS,
        [(f.name, f.init, f.init_sum) for f in functions if sum(f.init)],
    )
    yield _histogram(
        "lambda_AsyncEventAge_milliseconds",
        "Time from queueing an asynchronous event to each attempt to invoke it (ms)",
        AGE_BOUNDS_MS,
        [(f.name, f.async_age, f.async_age_sum) for f in functions if sum(f.async_age)],
    )
    yield _gauge("lambda_ConcurrentExecutions", "Invocations running now", functions, "in_flight")
    unreserved = GaugeMetricFamily(
        "lambda_UnreservedConcurrentExecutions",
        "Invocations running now of functions without reserved concurrency",
        value=reading.unreserved_in_flight,
    )
    yield unreserved
    yield GaugeMetricFamily(
        "eventrouter_max_concurrency", "The router's max_concurrency", value=reading.max_concurrency
    )
    yield GaugeMetricFamily(
        "eventrouter_unreserved_concurrency",
        "Slots shared by functions without a reservation",
        value=reading.unreserved,
    )
    yield _gauge(
        "eventrouter_reserved_concurrency",
        "A function's reserved concurrency",
        functions,
        "reserved",
    )
    yield _gauge(
        "lambda_IteratorAge_milliseconds",
        "Streams: age of the last record read when it was read, largest over partitions (ms)",
        functions,
        "iterator_age_ms",
    )
    yield _gauge(
        "lambda_OffsetLag",
        "Kafka (and shards with offsets): records not yet processed, over all partitions",
        functions,
        "offset_lag",
    )
    yield _gauge(
        "eventrouter_pollers",
        "Polled queues and notification feeds: pollers running",
        functions,
        "pollers",
    )
    environments = GaugeMetricFamily(
        "eventrouter_environments",
        "Process environments of isolated functions, by state",
        labels=["FunctionName", "state"],
    )
    for f in functions:
        if f.environments is not None:
            busy = f.environments_busy or 0
            environments.add_metric([f.name, "busy"], busy)
            environments.add_metric([f.name, "idle"], f.environments - busy)
    yield environments
    yield _gauge(
        "lambda_ProvisionedConcurrentExecutions",
        "Invocations running now on provisioned environments",
        functions,
        "provisioned_busy",
    )
    billed = CounterMetricFamily(
        "eventrouter_billed_duration_milliseconds",
        "Billed duration: each invocation rounded up to the next ms",
        labels=FUNCTION,
    )
    gb_seconds = CounterMetricFamily(
        "eventrouter_gb_seconds", "Billed duration x memory, as Lambda bills it", labels=FUNCTION
    )
    for f in functions:
        billed.add_metric([f.name], f.billed_ms)
        gb_seconds.add_metric([f.name], f.billed_ms / 1000 * f.memory_mb / 1024)
    yield billed
    yield gb_seconds
    depth = GaugeMetricFamily(
        "eventrouter_queue_depth", "Events in a queue of the durable store", labels=["queue"]
    )
    oldest = GaugeMetricFamily(
        "eventrouter_queue_oldest_age_seconds",
        "Age of the oldest event in a queue of the durable store",
        labels=["queue"],
    )
    for queue, (count, first) in sorted(reading.queues.items()):
        depth.add_metric([queue], count)
        if first is not None:
            oldest.add_metric([queue], max(0.0, reading.at - first))
    yield depth
    yield oldest
    yield CounterMetricFamily(
        "eventrouter_cpu_seconds",
        "CPU time of the router process and its finished child processes",
        value=reading.cpu_seconds,
    )


def _gauge(name: str, documentation: str, functions: list[FunctionReading], field: str) -> Metric:
    """A gauge of each function's ``field``, for the functions that have one."""
    family = GaugeMetricFamily(name, documentation, labels=FUNCTION)
    for f in functions:
        value = getattr(f, field)
        if value is not None:
            family.add_metric([f.name], value)
    return family


def _histogram(
    name: str,
    documentation: str,
    bounds: tuple[float, ...],
    series: list[tuple[str, Sequence[int], float]],
) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=FUNCTION)
    for function, counts, total in series:
        cumulative, buckets = 0, []
        for bound, count in zip([*bounds, float("inf")], counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
        family.add_metric([function], buckets, sum_value=total)
    return family
