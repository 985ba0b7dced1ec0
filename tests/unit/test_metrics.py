"""``/metrics`` (Lambda's CloudWatch names through prometheus-client), ``--metrics``, the
dashboard's data and the usage ledger, on a real engine and uvicorn."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import botocore.auth
import httpx
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from prometheus_client.parser import text_string_to_metric_families

from eventrouter import Router
from eventrouter.cli import main
from eventrouter.context import Context
from eventrouter.fakes import MemoryQueue, MemoryStream
from eventrouter.observability.dashboard import quantile
from eventrouter.observability.metrics import DURATION_BOUNDS_MS, Histogram
from eventrouter.observability.usage import charge, prices, read_usage
from eventrouter.runtime.engine import Engine
from eventrouter.testing import run_router
from tests.apps.secure import (
    BILLING_KEY,
    BILLING_SECRET,
    OTHER_KEY,
    OTHER_SECRET,
    write_credentials,
)

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def shop() -> Router:
    router = Router("shop", max_concurrency=10)

    @router.on_event(name="ok")
    async def ok(event: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    @router.on_event(name="boom", max_retries=0)
    async def boom(event: dict[str, Any]) -> None:
        raise ValueError("the till is empty")

    @router.on_event(name="closed", reserved_concurrency=0)
    async def closed(event: dict[str, Any]) -> None:
        return None

    return router


@contextlib.asynccontextmanager
async def serving(router: Router, **kwargs: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with (
        run_router(router, http="127.0.0.1:0", **kwargs) as app,
        httpx.AsyncClient(base_url=app.url, timeout=10) as client,
    ):
        yield app, client


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def test_histogram_buckets_are_inclusive_upper_bounds() -> None:
    h = Histogram((1.0, 2.0))
    for v in (0.5, 1.0, 1.5, 2.0, 9.0):
        h.observe(v)
    assert h.counts == [2, 2, 1]  # le=1: 0.5 and 1.0; le=2: 1.5 and 2.0; +Inf: 9.0
    assert h.sum == 14.0
    assert quantile(0.5, h.counts, h.bounds) == pytest.approx(1.25)
    assert quantile(0.99, [0] * len(DURATION_BOUNDS_MS) + [3]) == DURATION_BOUNDS_MS[-1]
    assert quantile(0.5, [0, 0, 0], (1.0, 2.0)) == 0.0


async def test_lambda_metrics_count_invocations_errors_throttles_and_durations() -> None:
    async with serving(shop()) as (app, client):
        for _ in range(3):
            await app.engine.invoke_outcome("ok", {})
        await app.engine.invoke_outcome("boom", {})
        await app.engine.invoke_outcome("closed", {})
        samples = await scrape(client)
    assert value(samples, "lambda_Invocations_total", FunctionName="ok") == 3
    assert value(samples, "lambda_Invocations_total", FunctionName="boom") == 1
    assert value(samples, "lambda_Invocations_total", FunctionName="closed") == 0
    assert value(samples, "lambda_Errors_total", FunctionName="boom") == 1
    assert value(samples, "lambda_Errors_total", FunctionName="ok") == 0
    assert value(samples, "lambda_Throttles_total", FunctionName="closed") == 1
    assert value(samples, "lambda_Duration_milliseconds_count", FunctionName="ok") == 3
    inf = value(samples, "lambda_Duration_milliseconds_bucket", FunctionName="ok", le="+Inf")
    assert inf == 3
    assert value(samples, "lambda_Duration_milliseconds_sum", FunctionName="ok") > 0
    # Billed: at least 1 ms each, and GB-seconds as Lambda bills them (128 MB).
    billed = value(samples, "eventrouter_billed_duration_milliseconds_total", FunctionName="ok")
    assert billed >= 3
    gb = value(samples, "eventrouter_gb_seconds_total", FunctionName="ok")
    assert gb == pytest.approx(billed / 1000 * 128 / 1024)
    assert value(samples, "lambda_ConcurrentExecutions", FunctionName="ok") == 0
    assert value(samples, "eventrouter_reserved_concurrency", FunctionName="closed") == 0
    assert value(samples, "eventrouter_max_concurrency") == 10


async def test_asynchronous_events_age_depth_and_drops() -> None:
    router = shop()
    release = anyio.Event()
    running = anyio.Event()

    @router.on_event(name="slow")
    async def slow(event: dict[str, Any]) -> None:
        running.set()
        await release.wait()

    async with serving(router) as (app, client):
        await app.engine.invoke_async("slow", {})
        await running.wait()
        await app.engine.invoke_async("boom", {})
        samples = await scrape(client)
        assert value(samples, "lambda_ConcurrentExecutions", FunctionName="slow") == 1
        assert value(samples, "lambda_UnreservedConcurrentExecutions") >= 1
        release.set()
        await app.engine.policy.wait_idle()
        await app.engine.store.flush()
        samples = await scrape(client)
    assert value(samples, "lambda_AsyncEventsReceived_total", FunctionName="slow") == 1
    assert value(samples, "lambda_AsyncEventAge_milliseconds_count", FunctionName="slow") == 1
    # boom fails once (max_retries=0) with no on_failure: dropped, as Lambda counts it.
    assert value(samples, "lambda_AsyncEventsDropped_total", FunctionName="boom") == 1
    # Both events left the queue: no series for it any more.
    assert ("eventrouter_queue_depth", (("queue", "fn:slow"),)) not in samples


async def test_queue_depth_and_the_age_of_the_oldest_event() -> None:
    router = Router("t")

    @router.on_event(name="never", reserved_concurrency=1)
    async def never(event: dict[str, Any]) -> None:
        await anyio.sleep_forever()

    async with serving(router) as (app, client):
        for _ in range(4):
            await app.engine.invoke_async("never", {})
        with anyio.fail_after(10):
            while True:  # one runs (its row stays until it ends), three wait
                samples = await scrape(client)
                if value(samples, "lambda_ConcurrentExecutions", FunctionName="never") == 1:
                    break
                await anyio.sleep(0.02)
        assert value(samples, "eventrouter_queue_depth", queue="fn:never") == 4
        assert value(samples, "eventrouter_queue_oldest_age_seconds", queue="fn:never") >= 0


async def test_stream_lag_and_pollers_are_gauges_of_their_function() -> None:
    router = Router("t")
    stream = MemoryStream("s", batch_size=2)
    queue = MemoryQueue("q", batch_size=10, min_pollers=2)

    @router.on_event(stream)
    async def consume(batch: list[dict[str, Any]]) -> None:
        return None

    @router.on_event(queue)
    async def work(batch: list[dict[str, Any]], ctx: Context) -> None:
        return None

    for n in range(4):
        stream.append({"n": n})
    queue.send({"n": 1})
    async with serving(router) as (_, client):
        await stream.wait_committed(0, 4)
        await queue.wait_deleted(1)
        samples = await scrape(client)
    assert value(samples, "lambda_OffsetLag", FunctionName="consume") == 0
    assert value(samples, "lambda_IteratorAge_milliseconds", FunctionName="consume") >= 0
    assert value(samples, "eventrouter_pollers", FunctionName="work") == 2


async def test_openmetrics_when_the_scraper_asks_for_it() -> None:
    async with serving(shop()) as (app, client):
        await app.engine.invoke_outcome("ok", {})
        response = await client.get(
            "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert 'lambda_Invocations_total{FunctionName="ok"} 1.0' in response.text


async def test_metrics_off_keeps_the_counters_but_times_nothing() -> None:
    router = shop()
    router.metrics = False
    async with serving(router) as (app, client):
        await app.engine.invoke_outcome("ok", {})
        await app.engine.invoke_outcome("boom", {})
        samples = await scrape(client)
        assert app.engine.usage is None
    assert value(samples, "lambda_Errors_total", FunctionName="boom") == 1
    assert value(samples, "lambda_Invocations_total", FunctionName="ok") == 0
    assert ("lambda_Duration_milliseconds_count", (("FunctionName", "ok"),)) in samples
    assert value(samples, "lambda_Duration_milliseconds_count", FunctionName="ok") == 0


async def test_a_metrics_port_of_its_own(tmp_path: Path) -> None:
    engine = Engine(shop(), state_dir=tmp_path, metrics_http="127.0.0.1:0")
    async with engine:
        await engine.invoke("ok", {})
        assert engine.http_port is None
        url = f"http://127.0.0.1:{engine.metrics_port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            samples = parse((await client.get("/metrics")).text)
            root = await client.get("/")
            other = await client.get("/2015-03-31/functions/ok/invocations")
            page = await client.get("/dashboard")
    assert value(samples, "lambda_Invocations_total", FunctionName="ok") == 1
    assert root.status_code == 307 and root.headers["location"] == "/dashboard"
    assert other.status_code == 404  # the metrics port serves nothing else
    assert page.status_code == 200 and "<svg" in page.text


def signed(url: str, key: str, secret: str) -> dict[str, str]:
    request = AWSRequest(method="GET", url=url)
    botocore.auth.SigV4Auth(BotoCredentials(key, secret), "monitoring", "us-east-1").add_auth(
        request
    )
    return dict(request.headers.items())


async def test_enforced_permissions_let_only_metrics_readers_in(tmp_path: Path) -> None:
    router = shop()
    router.enforce_permissions = True
    router.credentials = str(write_credentials(tmp_path))
    router.metrics_readers = ["billing"]
    async with serving(router) as (app, client):
        anonymous = await client.get("/metrics")
        dashboard = await client.get("/dashboard/data")
        url = f"{app.url}/metrics"
        reader = await client.get("/metrics", headers=signed(url, BILLING_KEY, BILLING_SECRET))
        other = await client.get("/metrics", headers=signed(url, OTHER_KEY, OTHER_SECRET))
    assert anonymous.status_code == 403 and dashboard.status_code == 403
    assert other.status_code == 403
    assert reader.status_code == 200 and "lambda_Invocations_total" in reader.text


async def test_dashboard_data_rates_percentiles_and_failures() -> None:
    async with serving(shop()) as (app, client):
        for _ in range(5):
            await app.engine.invoke_outcome("ok", {})
        await app.engine.invoke_outcome("boom", {})
        data = (await client.get("/dashboard/data")).json()  # a fresh reading
        page = await client.get("/dashboard")
    by_name = {f["name"]: f for f in data["functions"]}
    assert by_name["ok"]["invocations"] == 5 and by_name["ok"]["rates"]["invocations"] > 0
    assert 0 < by_name["ok"]["p50_ms"] <= by_name["ok"]["p99_ms"]
    assert by_name["closed"]["reserved"] == 0
    (failure,) = data["failures"]
    assert failure["function"] == "boom" and failure["error_type"] == "ValueError"
    assert failure["error_message"] == "the till is empty"
    assert by_name["ok"]["usage"]["requests"] == 5
    assert page.headers["content-type"].startswith("text/html")
    assert "dashboard/data" in page.text and "http://" not in page.text.replace(
        "http://www.w3.org/2000/svg", ""
    )  # no external asset


def test_charges_follow_lambdas_price_tiers() -> None:
    table = prices()
    assert table["as_of"]
    assert charge(1_000_000, 0, "x86_64", table) == pytest.approx(0.20)
    assert charge(0, 1000, "x86_64", table) == pytest.approx(0.0166667)
    assert charge(0, 1000, "arm64", table) == pytest.approx(0.0133334)
    # Past the first tier, the next price applies to the rest only.
    first = 6_000_000_000 * 0.0000166667
    assert charge(0, 7_000_000_000, "x86_64", table) == pytest.approx(first + 1e9 * 0.000015)


async def test_usage_is_written_to_the_state_dir_and_survives_restarts(tmp_path: Path) -> None:
    for _ in range(2):  # two runs of the router on one state dir add up
        async with run_router(shop(), state_dir=tmp_path) as app:
            for _ in range(3):
                await app.engine.invoke_outcome("ok", {})
    usage = read_usage(tmp_path, 0)
    (ok,) = [u for u in usage.functions if u.function == "ok"]
    assert ok.requests == 6
    assert ok.gb_seconds >= 6 * 0.001 * 128 / 1024
    assert ok.x86_64 == pytest.approx(charge(6, ok.gb_seconds, "x86_64", prices()))
    assert usage.cpu_seconds > 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["usage", "--state-dir", str(tmp_path), "--since", "24h"]) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["function", "requests", "GB-seconds", "x86_64", "$", "arm64", "$"]
    assert any(line.split()[:2] == ["ok", "6"] for line in lines)
    assert "router CPU seconds" in out.getvalue()


def test_usage_of_a_state_dir_without_any(tmp_path: Path, capsys: Any) -> None:
    assert main(["usage", "--state-dir", str(tmp_path)]) == 2
    assert "no usage recorded" in capsys.readouterr().err
    assert main(["usage", "--state-dir", str(tmp_path), "--since", "soon"]) == 2


async def test_a_failed_usage_write_is_written_with_the_next_one(tmp_path: Path) -> None:
    async with run_router(shop(), state_dir=tmp_path / "state") as app:
        ledger = app.engine.usage
        assert ledger is not None
        for _ in range(2):
            await app.engine.invoke_outcome("ok", {})
        good, ledger.path = ledger.path, tmp_path  # a folder: SQLite cannot open it
        await ledger.flush()  # logged, not raised
        ledger.path = good
        await app.engine.invoke_outcome("ok", {})
    (ok,) = [u for u in read_usage(tmp_path / "state", 0).functions if u.function == "ok"]
    assert ok.requests == 3
