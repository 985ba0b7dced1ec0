"""The Runtime API with AWS's own runtime interface clients: ``awslambdaric`` (PyPI) running an
unmodified Python Lambda handler, and ``aws-lambda-ric`` (npm) running a Node.js one; and
the same unmodified handler inline and in a Python process environment."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest

from eventrouter import Router
from eventrouter.errors import FunctionError, FunctionTimeout
from eventrouter.testing import run_router
from tests.apps.runtimes import APPS, NODE_RIC, router

pytestmark = pytest.mark.anyio

Logs = Callable[[], list[dict[str, Any]]]


async def test_awslambdaric_runs_an_unmodified_handler(log_records: Logs) -> None:
    async with run_router(router) as app:
        first = await app.invoke("ric", {"n": 1})
        second = await app.invoke("ric", {"n": 2})
        assert first["echo"] == {"n": 1} and second["echo"] == {"n": 2}
        assert first["pid"] == second["pid"]  # warm
        assert first["function"] == "ric"
        assert 0 < first["remaining"] <= 2000  # from Lambda-Runtime-Deadline-Ms
        assert len(first["request_id"]) == 36
        with pytest.raises(FunctionError) as caught:
            await app.invoke("ric", {"fail": "no stock"})
        assert caught.value.body["errorType"] == "ValueError"
        assert caught.value.body["errorMessage"] == "refused: no stock"
        assert (await app.invoke("ric", {"n": 3}))["pid"] == first["pid"]  # an error is not a crash
    cold, warm = [r for r in log_records() if r["event"] == "REPORT" and r["function"] == "ric"][:2]
    assert cold["init_duration_ms"] > 0 and "init_duration_ms" not in warm
    assert cold["max_memory_used_mb"] > 0


async def test_runtime_api_init_error_fails_the_invocation() -> None:
    async with run_router(router) as app:
        with pytest.raises(FunctionError) as caught:
            await app.invoke("ric-broken", {})
        assert caught.value.body["errorType"] == "Runtime.ImportModuleError"
        assert "no_such_module" in caught.value.body["errorMessage"]
        await app.wait_environments("ric-broken", 0)


async def test_an_init_that_never_ends_is_stopped_at_the_init_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("eventrouter.runtime.environments.pool.INIT_TIMEOUT", 0.5)
    async with run_router(router) as app:
        with pytest.raises(FunctionError) as caught:
            await app.invoke("never-ready", {})
        assert caught.value.body["errorType"] == "Sandbox.Timedout"
        await app.wait_environments("never-ready", 0)


async def test_runtime_api_function_timeout_kills_the_runtime() -> None:
    local = Router("ric-timeout")
    local.external(
        "sleepy",
        [sys.executable, "-m", "awslambdaric", "sleepy.handler"],
        cwd=str(APPS / "runtime_api"),
        timeout=0.5,
    )
    async with run_router(local) as app:
        assert await app.invoke("sleepy", {"sleep": 0}) == {"slept": 0}
        with pytest.raises(FunctionTimeout):
            await app.invoke("sleepy", {"sleep": 30})
        await app.wait_environments("sleepy", 0)
        assert await app.invoke("sleepy", {"sleep": 0}) == {"slept": 0}


async def test_http_api_shape_inline_isolated_and_through_awslambdaric() -> None:
    async with (
        run_router(router, http="127.0.0.1:0") as app,
        httpx.AsyncClient(base_url=app.url) as client,
    ):
        for prefix in ("inline", "isolated", "ric"):
            response = await client.get(f"/{prefix}/widget", params={"color": "red"})
            assert response.status_code == 201, response.text
            assert response.headers["x-handled-by"] == "lambda_handler"
            body = response.json()
            assert body["method"] == "GET" and body["path"] == f"/{prefix}/widget"
            assert body["query"] == {"color": "red"}
            assert body["remaining"] > 0


@pytest.mark.skipif(
    shutil.which("node") is None or not NODE_RIC.exists(),
    reason="aws-lambda-ric is not installed (make test installs it into tests/node_runtime)",
)
async def test_a_nodejs_handler_through_aws_lambda_ric() -> None:
    async with run_router(router) as app:
        first = await app.invoke("node", {"n": 1})
        second = await app.invoke("node", {"n": 2})
        assert first["runtime"].startswith("node v")
        assert first["echo"] == {"n": 1} and second["echo"] == {"n": 2}
        assert first["pid"] == second["pid"]
        assert first["functionName"] == "node"
        assert 0 < first["remainingMs"] <= 3000
        with pytest.raises(FunctionError) as caught:
            await app.invoke("node", {"fail": "bad size"})
        assert caught.value.body["errorType"] == "TypeError"
        assert caught.value.body["errorMessage"] == "refused: bad size"


async def test_runtime_api_protocol_errors() -> None:
    """A runtime that answers for the wrong request id, or an unknown path, is told so."""
    local = Router("raw-runtime")
    script = APPS / "runtime_api" / "raw_runtime.py"
    local.external("raw", [sys.executable, str(script)])
    async with run_router(local) as app:
        result = await app.invoke("raw", {"n": 1})
        with pytest.raises(FunctionError) as caught:
            await app.invoke("raw", {"big": True})
        assert caught.value.body["errorType"] == "Function.ResponseSizeTooLarge"
        assert f"({(7 << 20) + 2} bytes)" in caught.value.body["errorMessage"]
    assert result["wrong_id"] == 400
    assert result["unknown_path"] == 404
    assert result["headers"]["lambda-runtime-invoked-function-arn"].endswith(":function:raw")
    assert msgspec.json.decode(result["event"]) == {"n": 1}


@pytest.mark.integration
@pytest.mark.parametrize("isolation", ["inline", "process"])
async def test_unmodified_sqs_handler_inline_and_isolated(moto: str, isolation: str) -> None:
    """``event["Records"]`` and a partial batch response, from the same unmodified file."""
    from tests.apps.lambda_function import lambda_handler
    from tests.integration.test_sqs import depth, eventually, make_queue, send, source, sqs_client

    name, url, dlq_url = make_queue(moto, dlq_after=1)
    assert dlq_url is not None
    local = Router(f"sqs-{isolation}")
    local.on_event(
        source(moto, name, batch_size=10, report_batch_item_failures=True),
        name="orders",
        isolation=isolation,
        timeout=1,
    )(lambda_handler)
    send(moto, url, [{"n": 1}, {"retry": True, "n": 2}, {"n": 3}])
    async with run_router(local):
        await eventually(lambda: depth(moto, url) == 0 and depth(moto, dlq_url) == 1)
    (message,) = sqs_client(moto).receive_message(QueueUrl=dlq_url)["Messages"]
    assert msgspec.json.decode(message["Body"]) == {"retry": True, "n": 2}


async def test_a_command_that_cannot_start_fails_each_invocation_cleanly() -> None:
    local = Router("missing-command")
    local.external("missing", ["/nonexistent/bootstrap"])
    async with run_router(local) as app:
        for _ in range(2):
            with pytest.raises(FunctionError) as caught:
                await app.invoke("missing", {})
            assert caught.value.body["errorType"] == "Runtime.StartError"
            assert "/nonexistent/bootstrap" in caught.value.body["errorMessage"]
            assert app.environments("missing") == []
