"""The context object has every attribute of Lambda's Python runtime context, with its types:
compared with ``awslambdaric``'s own ``LambdaContext``, inline and in a process environment."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import pytest
from awslambdaric.lambda_context import LambdaContext

from eventrouter.testing import TestRouter, run_router
from tests.apps.context_shape import router, shape
from tests.services import lambda_client

pytestmark = pytest.mark.anyio

CLIENT_CONTEXT = {
    "client": {"installation_id": "i-1", "app_title": "shop", "app_version_code": "7"},
    "custom": {"user": "ann"},
    "env": {"locale": "en"},
}

#: eventrouter's own additions, which Lambda's context does not have.
OURS = {
    "attempt",
    "deadline",
    "deadline_ms",
    "http",
    "index",
    "invoke",
    "invoke_async",
    "messages",
    "record",
    "records",
    "request_id",
    "send",
    "trace_id",
}


def reference(client_context: Any) -> dict[str, Any]:
    """The shape of awslambdaric's context, as Lambda's Python runtime builds it."""
    env = {
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/f",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123",
        "AWS_LAMBDA_FUNCTION_NAME": "f",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        context = LambdaContext(
            "rid", client_context, {}, int(time.time() * 1000) + 1000, "arn:aws:lambda:f"
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    return shape(context)


def ours(observed: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in observed.items() if k not in OURS}


def test_the_reference_reads_what_it_should() -> None:
    expected = reference(json.loads(json.dumps(CLIENT_CONTEXT)))
    assert expected["memory_limit_in_mb"] == "str"
    assert expected["client_context"]["client"]["app_title"] == "str"
    assert expected["identity"] == {
        "cognito_identity_id": "None",
        "cognito_identity_pool_id": "None",
    }


async def test_inline_context_matches_awslambdaric() -> None:
    async with run_router(router) as app:
        plain = await app.invoke("inline", {})
        with_client = app.engine.result(
            await app.engine.invoke_outcome("inline", {}, client_context=CLIENT_CONTEXT)
        )
    assert ours(plain) == reference(None)
    assert ours(with_client) == reference(json.loads(json.dumps(CLIENT_CONTEXT)))


async def test_process_environment_context_matches_awslambdaric() -> None:
    async with run_router(router) as app:
        with_client = app.engine.result(
            await app.engine.invoke_outcome("isolated", {}, client_context=CLIENT_CONTEXT)
        )
    assert ours(with_client) == reference(json.loads(json.dumps(CLIENT_CONTEXT)))


def test_client_context_from_the_invoke_api() -> None:
    with TestRouter(router, http="127.0.0.1:0") as app:
        lam = lambda_client(app.url)
        encoded = base64.b64encode(json.dumps(CLIENT_CONTEXT).encode()).decode()
        r = lam.invoke(FunctionName="inline", Payload=b"{}", ClientContext=encoded)
        assert ours(json.loads(r["Payload"].read())) == reference(
            json.loads(json.dumps(CLIENT_CONTEXT))
        )
