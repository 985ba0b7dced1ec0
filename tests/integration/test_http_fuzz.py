"""Fuzz the HTTP surface: whatever a client sends, the router itself never answers 5xx.

502 and 504 are the handlers' own failures (expected); anything else at 500 or above is a
bug of the router. Hypothesis drives a real server with a real client.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventrouter.testing import TestRouter
from tests.apps import web

pytestmark = pytest.mark.integration

PATHS = [
    "/orders/{x}",
    "/raw/{x}",
    "/raw/{x}/{x}",
    "/typed-event",
    "/lambda-style",
    "/response",
    "/nothing",
    "/items",
    "/items/{x}",
    "/fail",
    "/bad-return",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/2015-03-31/functions/{x}/invocations",
    "/2015-03-31/functions/echo/invocations",
    "/2015-03-31/functions/typed_sync/invocations",
    "/{x}",
]
HANDLER_FAILURES = {502, 504}

segment = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="/?#"),
    min_size=1,
    max_size=12,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with (
        TestRouter(web.router, http="127.0.0.1:0") as router,
        httpx.Client(base_url=router.url, timeout=30) as client,
    ):
        yield client


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], dict[str, str], bytes]:
    template = draw(st.sampled_from(PATHS))
    path = template
    while "{x}" in path:
        path = path.replace("{x}", quote(draw(segment), safe=""), 1)
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]))
    headers = {}
    if draw(st.booleans()):
        headers["content-type"] = draw(
            st.sampled_from(
                [
                    "application/json",
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "application/json; charset=utf-8",
                    "application/vnd.api+json",
                    "",
                    "\u00e9/\u00e9",
                ]
            ).filter(lambda v: v.isascii())
        )
    if draw(st.booleans()):
        headers["x-amz-invocation-type"] = draw(
            st.sampled_from(["RequestResponse", "Event", "DryRun", "Bogus", ""])
        )
    if draw(st.booleans()):
        headers["x-amz-log-type"] = draw(st.sampled_from(["Tail", "None", "x"]))
    if draw(st.booleans()):
        headers["x-amz-client-context"] = draw(
            st.sampled_from(["e30=", "not base64!", "bm90IGpzb24=", ""])
        )
    body_kind = draw(st.sampled_from(["none", "json", "bytes"]))
    content = b""
    if body_kind == "json":
        import msgspec

        content = msgspec.json.encode(draw(json_values))
    elif body_kind == "bytes":
        content = draw(st.binary(max_size=64))
    query = draw(st.dictionaries(segment, segment, max_size=3))
    return method, path, query, headers, content


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=requests())
def test_router_never_answers_5xx_itself(
    client: httpx.Client, request: tuple[str, str, dict[str, str], dict[str, str], bytes]
) -> None:
    method, path, query, headers, content = request
    response = client.request(method, path, params=query, headers=headers, content=content)
    assert response.status_code < 500 or response.status_code in HANDLER_FAILURES, (
        method,
        response.url,
        response.status_code,
        response.text[:300],
    )
    assert "x-amzn-requestid" in response.headers
