"""Traces: a span per invocation with OpenTelemetry's FaaS attributes, and one trace across
HTTP, the durable queue, destinations, streams and process environments (the SDK's in-memory
exporter; a real engine and uvicorn)."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from eventrouter import EventRule, Http, Router, to_bus, to_function
from eventrouter.arns import function_arn
from eventrouter.context import Context
from eventrouter.fakes import MemoryStream
from eventrouter.testing import run_router

pytestmark = pytest.mark.anyio

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def traced_router(exporter: InMemorySpanExporter, name: str = "traced") -> Router:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Router(name, tracing=provider)


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (span,) = [s for s in spans if s.name == name]
    return span


def hex_ids(span: ReadableSpan) -> tuple[str, str, str | None]:
    """(trace id, span id, parent span id) in hex."""
    context = span.get_span_context()
    parent = span.parent
    return (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        None if parent is None else f"{parent.span_id:016x}",
    )


async def test_http_to_async_invoke_to_destination_is_one_trace(
    exporter: InMemorySpanExporter,
) -> None:
    router = traced_router(exporter)
    done = anyio.Event()
    seen: dict[str, Any] = {}

    @router.on_event(Http("POST /orders"))
    async def front(event: dict[str, Any], ctx: Context) -> dict[str, str]:
        await ctx.invoke_async("worker", {"n": 1})  # event: API Gateway's, for a dict
        return {"queued": "yes"}

    @router.on_event(None, name="worker", on_success=to_function("finish"))
    async def worker(event: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {"done": event["n"]}

    @router.on_event(None, name="finish")
    async def finish(record: dict[str, Any], ctx: Context) -> None:
        seen["trace_id"] = ctx.trace_id
        done.set()

    async with (
        run_router(router, http="127.0.0.1:0") as app,
        httpx.AsyncClient(base_url=app.url) as client,
    ):
        response = await client.post("/orders", json={"n": 1}, headers={"traceparent": TRACEPARENT})
        assert response.status_code == 200
        with anyio.fail_after(10):
            await done.wait()
    spans = exporter.get_finished_spans()
    front_span, worker_span = by_name(spans, "front"), by_name(spans, "worker")
    send_span = by_name(spans, "on_success function:finish")
    finish_span = by_name(spans, "finish")
    trace, front_id, front_parent = hex_ids(front_span)
    assert (trace, front_parent) == (CLIENT_TRACE, CLIENT_SPAN)  # continues the caller's
    _, worker_id, worker_parent = hex_ids(worker_span)
    _, send_id, send_parent = hex_ids(send_span)
    _, _, finish_parent = hex_ids(finish_span)
    assert worker_parent == front_id  # through the durable queue
    assert send_parent == worker_id  # the record's delivery, inside the worker's trace
    assert finish_parent == send_id  # the destination function continues it
    assert {hex_ids(s)[0] for s in spans} == {CLIENT_TRACE}
    # Lambda's names for what the spans say of their invocation.
    attributes = front_span.attributes or {}
    assert attributes["faas.trigger"] == "http"
    assert attributes["http.route"] == "/orders"
    assert attributes["faas.coldstart"] is True
    assert attributes["cloud.resource_id"] == function_arn("front")
    assert len(str(attributes["faas.invocation_id"])) == 36
    assert front_span.kind is SpanKind.SERVER
    assert (worker_span.attributes or {})["faas.trigger"] == "other"
    assert send_span.kind is SpanKind.PRODUCER
    # ctx.trace_id: X-Ray's form of the invocation's own span.
    root = f"Root=1-{CLIENT_TRACE[:8]}-{CLIENT_TRACE[8:]}"
    assert seen["trace_id"].startswith(f"{root};Parent={hex_ids(finish_span)[1]};")


async def test_x_ray_header_in_and_errors_on_the_span(exporter: InMemorySpanExporter) -> None:
    router = traced_router(exporter)

    @router.on_event(None, name="boom")
    async def boom(event: Any) -> None:
        raise ValueError("no stock")

    header = f"Root=1-{CLIENT_TRACE[:8]}-{CLIENT_TRACE[8:]};Parent={CLIENT_SPAN};Sampled=1"
    async with (
        run_router(router, http="127.0.0.1:0") as app,
        httpx.AsyncClient(base_url=app.url) as client,
    ):
        response = await client.post(
            "/2015-03-31/functions/boom/invocations", json={}, headers={"X-Amzn-Trace-Id": header}
        )
    assert response.headers["x-amz-function-error"] == "Unhandled"
    span = by_name(exporter.get_finished_spans(), "boom")
    assert hex_ids(span)[0::2] == (CLIENT_TRACE, CLIENT_SPAN)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ValueError"


async def test_a_batch_links_the_traces_of_its_records(exporter: InMemorySpanExporter) -> None:
    router = traced_router(exporter)
    stream = MemoryStream("clicks", batch_size=3)

    @router.on_event(stream)
    async def count(batch: list[dict[str, Any]]) -> None:
        return None

    parents = [f"00-{n:032x}-{n:016x}-01" for n in (1, 2)]
    stream.append({"n": 1}, headers=(("traceparent", parents[0].encode()),))
    stream.append({"n": 2}, headers=(("traceparent", parents[1].encode()),))
    stream.append({"n": 3})  # a record without a trace
    async with run_router(router):
        await stream.wait_committed(0, 3)
    span = by_name(exporter.get_finished_spans(), "count")
    linked = sorted(f"{link.context.trace_id:032x}" for link in span.links)
    assert linked == [f"{1:032x}", f"{2:032x}"]
    assert span.parent is None  # a batch starts its own trace
    attributes = span.attributes or {}
    assert attributes["messaging.system"] == "kafka"
    assert attributes["messaging.batch.message_count"] == 3
    assert attributes["faas.trigger"] == "pubsub"
    assert span.kind is SpanKind.CONSUMER


async def test_process_environments_get_the_trace_as_lambda_gives_it(
    exporter: InMemorySpanExporter,
) -> None:
    from tests.apps import isolated

    router = traced_router(exporter)
    router.on_event(None, name="traced", isolation="process")(isolated.traced)

    @router.on_event(None, name="noted")
    async def noted(event: Any) -> None:
        return None

    async with run_router(router) as app:
        result = await app.engine.invoke("traced", {})
    spans = exporter.get_finished_spans()
    traced, called = by_name(spans, "traced"), by_name(spans, "noted")
    trace, span_id, _ = hex_ids(traced)
    expected = f"Root=1-{trace[:8]}-{trace[8:]};Parent={span_id};Sampled=1"
    assert result == {"env": expected, "ctx": expected}
    assert hex_ids(called)[2] == span_id  # ctx.invoke from the environment: a child


async def test_no_spans_and_no_trace_ids_when_tracing_is_off(
    exporter: InMemorySpanExporter,
) -> None:
    router = traced_router(exporter)
    router.tracing = False
    ids: list[str | None] = []
    twice = anyio.Event()

    @router.on_event(None, name="plain")
    async def plain(event: Any, ctx: Context) -> None:
        ids.append(ctx.trace_id)
        if len(ids) == 2:
            twice.set()

    async with run_router(router) as app:
        await app.engine.invoke("plain", {})
        await app.invoke_async("plain", {})
        with anyio.fail_after(10):
            await twice.wait()
    assert exporter.get_finished_spans() == ()
    assert ids == [None, None]


async def test_the_event_bus_carries_the_trace_to_its_rules(
    exporter: InMemorySpanExporter,
) -> None:
    router = traced_router(exporter)
    matched = anyio.Event()

    @router.on_event(None, name="announce")
    async def announce(event: Any, ctx: Context) -> None:
        await ctx.send(to_bus("orders", source="shop", detail_type="placed"), {"n": 1})

    @router.on_event(EventRule(bus="orders", pattern={"source": ["shop"]}), name="listen")
    async def listen(event: dict[str, Any]) -> None:
        matched.set()

    async with run_router(router) as app:
        await app.engine.invoke("announce", {})
        with anyio.fail_after(10):
            await matched.wait()
    spans = exporter.get_finished_spans()
    announced, listened = by_name(spans, "announce"), by_name(spans, "listen")
    assert hex_ids(listened)[0] == hex_ids(announced)[0]
    assert hex_ids(listened)[2] == hex_ids(announced)[1]  # the rule's target: a child
    assert (listened.attributes or {})["messaging.destination.name"] == "orders/listen"


async def test_awslambdaric_gets_the_trace_through_the_runtime_api(
    exporter: InMemorySpanExporter,
) -> None:
    from tests.apps.runtimes import APPS

    router = traced_router(exporter)
    router.external(
        "ric",
        [sys.executable, "-m", "awslambdaric", "lambda_function.lambda_handler"],
        cwd=str(APPS),
    )
    async with run_router(router) as app:
        result = await app.engine.invoke("ric", {"n": 1})
    trace, span_id, _ = hex_ids(by_name(exporter.get_finished_spans(), "ric"))
    # Lambda-Runtime-Trace-Id, which awslambdaric puts in _X_AMZN_TRACE_ID for the handler.
    assert result["trace"] == f"Root=1-{trace[:8]}-{trace[8:]};Parent={span_id};Sampled=1"
