"""The HTTP surface over a real uvicorn server on loopback, with real clients."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from eventrouter.testing import TestRouter
from tests.apps import web
from tests.lambda_models import check_event
from tests.services import lambda_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[TestRouter]:
    with TestRouter(web.router, http="127.0.0.1:0") as router:
        yield router


@pytest.fixture(scope="module")
def client(server: TestRouter) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def lam(server: TestRouter) -> Any:
    return lambda_client(server.url)


def assert_request_id(response: httpx.Response) -> str:
    rid = response.headers["x-amzn-requestid"]
    assert len(rid) == 36
    return rid


# -- application routes ----------------------------------------------------------------------


def test_typed_body_path_query_headers(client: httpx.Client) -> None:
    r = client.post(
        "/orders/o-7?source=web&tag=a&tag=b",
        json={"order_id": "o-7", "amount": 3.5},
        headers={"X-Trace": "t-1"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "order_id": "o-7",
        "path_id": "o-7",
        "query": {"source": "web", "tag": "a,b"},
        "trace": "t-1",
    }
    assert_request_id(r)


def test_raw_event_is_api_gateway_v2(client: httpx.Client) -> None:
    r = client.post(
        "/raw/a/b/c?x=1&x=2&y=",
        content=b'{"k": 1}',
        headers={
            "Content-Type": "application/json",
            "User-Agent": "tester/1",
            "Cookie": "s=1; t=2",
        },
    )
    assert r.status_code == 200
    body = r.json()
    event = body["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /raw/{rest+}"
    assert event["rawPath"] == "/raw/a/b/c"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["pathParameters"] == {"rest": "a/b/c"}
    assert event["headers"]["content-type"] == "application/json"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["body"] == '{"k": 1}'
    assert event["isBase64Encoded"] is False
    http = event["requestContext"]["http"]
    assert http["method"] == "POST" and http["path"] == "/raw/a/b/c"
    assert http["sourceIp"] == "127.0.0.1" and http["userAgent"] == "tester/1"
    assert event["requestContext"]["requestId"] == body["request_id"] == assert_request_id(r)
    context = event["requestContext"]
    assert context["http"]["protocol"] == "HTTP/1.1"
    assert context["domainName"] == "127.0.0.1" and context["domainPrefix"] == "127"
    assert context["stage"] == "$default" and context["accountId"]
    parsed = check_event("http", event)
    assert parsed.requestContext.domainPrefix == "127"
    assert parsed.rawPath == "/raw/a/b/c" and parsed.cookies == ["s=1", "t=2"]


def test_binary_body_is_base64(client: httpx.Client) -> None:
    data = bytes(range(256))
    r = client.post("/raw/bin", content=data, headers={"Content-Type": "application/octet-stream"})
    event = r.json()["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == data
    check_event("http", event)


def test_typed_http_event(client: httpx.Client) -> None:
    r = client.post("/typed-event", content=b"plain", headers={"Content-Type": "text/plain"})
    assert r.json() == {"method": "POST", "body": "plain"}


def test_lambda_style_response(client: httpx.Client) -> None:
    r = client.get("/lambda-style")
    assert r.status_code == 201
    assert r.content == b"hello"
    assert r.headers["x-custom"] == "yes"
    assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert_request_id(r)


def test_explicit_response(client: httpx.Client) -> None:
    r = client.get("/response")
    assert r.status_code == 202
    assert r.content == b"\x00\x01binary"
    assert r.headers["x-kind"] == "raw"
    assert r.headers["content-type"] == "application/octet-stream"


def test_plain_values(client: httpx.Client) -> None:
    assert client.get("/nothing").json() is None
    assert client.get("/items").json() == [1, 2, 3]
    assert client.get("/items/special").json() == "special"  # static beats template
    assert client.get("/items/42").json() == "item 42"
    head = client.head("/items")
    assert head.status_code == 200 and head.content == b""


def test_validation_and_body_errors(client: httpx.Client) -> None:
    r = client.post("/orders/o-1", json={"order_id": "o-1", "amount": "lots"})
    assert r.status_code == 400
    assert "$.amount" in r.json()["errorMessage"]
    assert r.json()["requestId"] == assert_request_id(r)
    r = client.post("/orders/o-1", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["errorMessage"]
    r = client.post("/orders/o-1", content=b"a=1", headers={"Content-Type": "text/csv"})
    assert r.status_code == 415
    r = client.post(
        "/orders/o-1",
        content=b'"' + b"x" * (6 * 1024 * 1024) + b'"',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert_request_id(r)


def test_function_error_timeout_and_bad_return(client: httpx.Client) -> None:
    r = client.post("/fail", json={})
    assert r.status_code == 502
    body = r.json()
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "handler broke"
    assert "stackTrace" not in body  # debug is off
    assert body["requestId"] == assert_request_id(r)
    r = client.get("/slow")
    assert r.status_code == 504
    assert r.json()["errorType"] == "Sandbox.Timedout"
    r = client.get("/bad-return")
    assert r.status_code == 502 and r.json()["errorType"] == "Runtime.MarshalError"


def test_not_found_and_method_not_allowed(client: httpx.Client) -> None:
    r = client.get("/no/such/path")
    assert r.status_code == 404
    assert_request_id(r)
    r = client.put("/orders/o-1", json={})
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert_request_id(r)


def test_throttled_route(server: TestRouter, client: httpx.Client) -> None:
    web.single_entered.clear()
    web.single_gate.clear()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.get, "/single")
        assert web.single_entered.wait(10)
        second = client.get("/single")
        web.single_gate.set()
        assert first.result(10).status_code == 200
    assert second.status_code == 429
    assert second.headers["retry-after"] == "1"
    assert second.json()["errorType"] == "TooManyRequestsException"
    assert_request_id(second)


def test_health_readiness_and_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    assert_request_id(r)
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    create = doc["paths"]["/orders/{order_id}"]["post"]
    assert create["operationId"] == "create_order"
    assert create["parameters"][0]["name"] == "order_id"
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Order"
    }
    ok = create["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Accepted"}
    order = doc["components"]["schemas"]["Order"]
    assert order["required"] == ["order_id", "amount"]
    assert "post" in doc["paths"]["/2015-03-31/functions/{FunctionName}/invocations"]
    assert set(doc["paths"]["/raw/{rest+}"]) == {"get", "post", "delete"}


# -- the Invoke API with boto3 ---------------------------------------------------------------


def test_invoke_request_response(lam: Any) -> None:
    r = lam.invoke(FunctionName="echo", Payload=json.dumps({"a": 1}))
    assert r["StatusCode"] == 200
    assert r["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in r
    assert json.loads(r["Payload"].read()) == {"event": {"a": 1}, "client_context": None}
    assert len(r["ResponseMetadata"]["RequestId"]) == 36


def test_invoke_empty_payload_is_empty_object(lam: Any) -> None:
    r = lam.invoke(FunctionName="echo")
    assert json.loads(r["Payload"].read())["event"] == {}


def test_invoke_function_error_and_timeout(lam: Any) -> None:
    r = lam.invoke(FunctionName="fails", Payload=b"{}")
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    body = json.loads(r["Payload"].read())
    assert body["errorType"] == "RuntimeError" and body["errorMessage"] == "invoke api failure"
    assert body["stackTrace"]
    r = lam.invoke(FunctionName="slow", Payload=b"{}")
    assert r["FunctionError"] == "Unhandled"
    body = json.loads(r["Payload"].read())
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 0.05 seconds")


def test_invoke_validation_error_is_a_function_error(lam: Any) -> None:
    r = lam.invoke(FunctionName="typed_sync", Payload=b'{"order_id": "x", "amount": "no"}')
    assert r["FunctionError"] == "Unhandled"
    assert json.loads(r["Payload"].read())["errorType"] == "Runtime.UnmarshalError"
    ok = lam.invoke(FunctionName="typed_sync", Payload=b'{"order_id": "x", "amount": 2.5}')
    assert json.loads(ok["Payload"].read()) == 2.5


def test_invoke_event_and_dry_run(server: TestRouter, lam: Any) -> None:
    r = lam.invoke(FunctionName="queued", InvocationType="Event", Payload=b'{"n": 5}')
    assert r["StatusCode"] == 202
    request_id = r["ResponseMetadata"]["RequestId"]
    record = server.next_record("queued", "on_success")
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestPayload"] == {"n": 5}
    assert lam.invoke(FunctionName="queued", InvocationType="DryRun")["StatusCode"] == 204


def test_invoke_errors(lam: Any) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException, match="function:nope"):
        lam.invoke(FunctionName="nope")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="echo", Qualifier="7")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="nope", InvocationType="DryRun")
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName="echo", Payload=b"{not json")
    with pytest.raises(lam.exceptions.RequestTooLargeException):
        lam.invoke(FunctionName="echo", Payload=b'"' + b"x" * (6 * 1024 * 1024) + b'"')
    with pytest.raises(lam.exceptions.RequestTooLargeException):
        lam.invoke(
            FunctionName="echo", InvocationType="Event", Payload=b'"' + b"x" * (1024 * 1024) + b'"'
        )
    with pytest.raises(lam.exceptions.TooManyRequestsException) as info:
        lam.invoke(FunctionName="disabled", Payload=b"{}")
    assert info.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_invoke_by_arn_and_qualifier(lam: Any) -> None:
    arn = "arn:aws:lambda:us-east-1:000000000000:function:echo"
    for name in (arn, f"{arn}:$LATEST", "000000000000:function:echo", "echo:$LATEST"):
        r = lam.invoke(FunctionName=name, Payload=b"1")
        assert json.loads(r["Payload"].read())["event"] == 1, name


def test_invoke_log_tail_and_client_context(lam: Any) -> None:
    context = base64.b64encode(json.dumps({"custom": {"user": "ann"}}).encode()).decode()
    r = lam.invoke(FunctionName="echo", Payload=b'"hi"', LogType="Tail", ClientContext=context)
    assert json.loads(r["Payload"].read())["client_context"] == {
        "custom": {"user": "ann"},
        "env": None,
    }
    tail = base64.b64decode(r["LogResult"]).decode().splitlines()
    rid = r["ResponseMetadata"]["RequestId"]
    assert tail[0] == f"START RequestId: {rid} Version: $LATEST"
    assert msgspec.json.decode(tail[1])["event"] == "echoing"
    assert tail[2] == f"END RequestId: {rid}" and tail[3].startswith(f"REPORT RequestId: {rid}\t")
    assert "LogResult" not in lam.invoke(FunctionName="echo", Payload=b"1")


def test_invoke_with_aiobotocore(server: TestRouter) -> None:
    from aiobotocore.session import get_session

    async def scenario() -> tuple[Any, int]:
        session = get_session()
        async with session.create_client(
            "lambda",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ) as lam:
            r = await lam.invoke(FunctionName="echo", Payload=b'{"via": "aiobotocore"}')
            payload = json.loads(await r["Payload"].read())
            event = await lam.invoke(FunctionName="queued", InvocationType="Event", Payload=b"{}")
            return payload, event["StatusCode"]

    payload, status = anyio.run(scenario)
    assert payload["event"] == {"via": "aiobotocore"}
    assert status == 202
