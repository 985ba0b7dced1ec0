"""Permissions over a real uvicorn server: SigV4 callers (boto3), API keys, public routes,
execution roles, start-up checks, log redaction and the state directory's modes."""

from __future__ import annotations

import datetime
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import boto3
import botocore.auth
import httpx
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from eventrouter import Kafka, Queue, Router, Sqs, to_directory, to_queue, to_sqs
from eventrouter.arns import queue_arn
from eventrouter.errors import AccessDenied, ConfigError
from eventrouter.sources.queue.source import QUEUE_SERVICE
from eventrouter.testing import TestRouter, run_router
from tests import services
from tests.apps import secure
from tests.apps.secure import (
    BILLING_KEY,
    BILLING_SECRET,
    MOBILE_API_KEY,
    OTHER_KEY,
    OTHER_SECRET,
    STRANGER_API_KEY,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("secure")


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[TestRouter]:
    with TestRouter(secure.build(folder), http="127.0.0.1:0") as router:
        yield router


@pytest.fixture(scope="module")
def client(server: TestRouter) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def lambda_client(url: str, key: str = BILLING_KEY, secret: str = BILLING_SECRET) -> Any:
    return services.lambda_client(url, key, secret)


def signed_headers(
    url: str, method: str = "POST", body: bytes = b"", *, at: datetime.datetime | None = None
) -> dict[str, str]:
    """Headers of a request signed with botocore's SigV4 signer (at ``at``, default now)."""
    request = AWSRequest(method=method, url=url, data=body)
    signer = botocore.auth.SigV4Auth(
        BotoCredentials(BILLING_KEY, BILLING_SECRET), "lambda", "us-east-1"
    )
    if at is None:
        signer.add_auth(request)
    else:
        original = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda: at  # type: ignore[assignment]
        try:
            signer.add_auth(request)
        finally:
            botocore.auth.get_current_datetime = original
    return dict(request.headers.items())


def error_code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


# -- the Invoke API with SigV4 ---------------------------------------------------------------


def test_correctly_signed_boto3_client_is_allowed(server: TestRouter) -> None:
    response = lambda_client(server.url).invoke(
        FunctionName="charge", Payload=json.dumps({"amount": 3})
    )
    assert response["StatusCode"] == 200
    assert json.loads(response["Payload"].read()) == {"charged": 3}
    # A full ARN, encoded into the path by botocore, is signed and verified the same way.
    arn = "arn:aws:lambda:us-east-1:000000000000:function:charge"
    response = lambda_client(server.url).invoke(FunctionName=arn, Payload=b"{}")
    assert response["StatusCode"] == 200


def test_asynchronous_and_dry_run_invocations_are_checked_too(server: TestRouter) -> None:
    allowed = lambda_client(server.url)
    assert allowed.invoke(FunctionName="charge", InvocationType="Event")["StatusCode"] == 202
    assert allowed.invoke(FunctionName="charge", InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(ClientError) as caught:
        lambda_client(server.url, OTHER_KEY, OTHER_SECRET).invoke(
            FunctionName="charge", InvocationType="Event"
        )
    assert error_code(caught.value) == (403, "AccessDeniedException")


def test_wrong_secret_is_refused(server: TestRouter) -> None:
    with pytest.raises(ClientError) as caught:
        lambda_client(server.url, BILLING_KEY, "not-the-secret").invoke(FunctionName="charge")
    assert error_code(caught.value) == (403, "InvalidSignatureException")


def test_unknown_access_key_is_refused(server: TestRouter) -> None:
    with pytest.raises(ClientError) as caught:
        lambda_client(server.url, "AKIAUNKNOWN000000000", "x").invoke(FunctionName="charge")
    assert error_code(caught.value) == (403, "UnrecognizedClientException")


def test_expired_signature_is_refused(server: TestRouter, client: httpx.Client) -> None:
    url = f"{server.url}/2015-03-31/functions/charge/invocations"
    body = b'{"amount": 1}'
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=6)
    r = client.post(url, content=body, headers=signed_headers(url, body=body, at=past))
    assert r.status_code == 403
    assert r.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert "Signature expired" in r.json()["message"]
    # The same request signed now is accepted: the refusal was the clock, not the signing.
    r = client.post(url, content=body, headers=signed_headers(url, body=body))
    assert r.status_code == 200, r.text
    assert r.json() == {"charged": 1}


def test_tampered_body_is_refused(server: TestRouter, client: httpx.Client) -> None:
    url = f"{server.url}/2015-03-31/functions/charge/invocations"
    headers = signed_headers(url, body=b'{"amount": 1}')
    r = client.post(url, content=b'{"amount": 1000}', headers=headers)
    assert r.status_code == 403
    assert r.headers["x-amzn-errortype"] == "InvalidSignatureException"


def test_unsigned_request_is_refused(server: TestRouter, client: httpx.Client) -> None:
    r = client.post("/2015-03-31/functions/charge/invocations", content=b"{}")
    assert r.status_code == 403
    assert r.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


def test_unknown_and_refused_functions_look_the_same(server: TestRouter) -> None:
    other = lambda_client(server.url, OTHER_KEY, OTHER_SECRET)
    answers = []
    for name in ("charge", "no-such-function"):
        with pytest.raises(ClientError) as caught:
            other.invoke(FunctionName=name, Payload=b"{}")
        assert error_code(caught.value) == (403, "AccessDeniedException")
        answers.append(caught.value.response["Error"]["Message"].replace(name, "NAME"))
    assert answers[0] == answers[1]
    # A function whose policy names nobody refuses even the allowed caller of another one.
    with pytest.raises(ClientError) as caught:
        lambda_client(server.url).invoke(FunctionName="refund")
    assert error_code(caught.value) == (403, "AccessDeniedException")


# -- application routes ----------------------------------------------------------------------


def test_route_with_api_key(client: httpx.Client) -> None:
    assert client.get("/reports", headers={"x-api-key": MOBILE_API_KEY}).json() == {"reports": 2}
    assert client.get("/reports").status_code == 403
    assert client.get("/reports", headers={"x-api-key": "wrong-key-0123456789abc"}).status_code == (
        403
    )
    # A valid key whose principal the function's policy does not name.
    assert client.get("/reports", headers={"x-api-key": STRANGER_API_KEY}).status_code == 403


def test_public_route_needs_a_policy_for_everyone(client: httpx.Client) -> None:
    assert client.get("/hello").json() == {"hello": "world"}
    r = client.get("/private")
    assert r.status_code == 403
    assert r.json()["errorType"] == "AccessDeniedException"


def test_route_signed_with_sigv4(server: TestRouter, client: httpx.Client) -> None:
    url = f"{server.url}/signed"
    assert client.post(url, content=b"{}", headers=signed_headers(url, body=b"{}")).json() == {
        "signed": True
    }
    assert client.post(url, content=b"{}").status_code == 403


def test_unknown_paths_methods_and_the_openapi_document_are_forbidden(
    client: httpx.Client,
) -> None:
    for method, path in [("GET", "/nowhere"), ("DELETE", "/hello"), ("GET", "/openapi.json")]:
        r = client.request(method, path)
        assert r.status_code == 403, (method, path)
        assert r.json()["errorMessage"] == "Forbidden"
    assert client.get("/healthz").status_code == 200


# -- execution roles -------------------------------------------------------------------------


def test_role_allows_invoking_some_functions_and_not_others(server: TestRouter) -> None:
    assert server.invoke("worker", {"call": "refund"}) == {"refunded": True}
    with pytest.raises(Exception, match="AccessDenied") as caught:
        server.invoke("worker", {"call": "charge"})
    assert "arn:aws:iam::000000000000:role/worker is not authorized" in str(caught.value)


def test_role_forbids_ctx_send_to_a_queue(server: TestRouter) -> None:
    with pytest.raises(Exception, match="AccessDenied") as caught:
        server.invoke("worker", {"send": True})
    assert "eventrouter:SendMessage" in str(caught.value)


def test_allowed_destination_receives_the_failure_record(server: TestRouter, folder: Path) -> None:
    request_id = server.invoke_async("worker", {"fail": True})
    record = server.next_record("worker", "on_failure")
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    written = json.loads((folder / "failed" / f"{request_id}.json").read_bytes())
    assert written["requestPayload"] == {"fail": True}


def test_destination_the_role_forbids_is_a_start_up_error(tmp_path: Path) -> None:
    router = Router("strict", enforce_permissions=True, credentials=None)

    @router.on_event(
        None,
        role={"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]},
        on_failure=to_directory(tmp_path / "failed"),
    )
    async def charge(event: dict[str, Any]) -> None: ...

    with (
        pytest.raises(ConfigError, match=r"on_failure=directory:.* is not allowed") as caught,
        TestRouter(router, state_dir=tmp_path / "state"),
    ):
        pass
    assert "eventrouter:WriteFile" in str(caught.value)


@pytest.mark.anyio
async def test_destination_refused_at_delivery_is_counted_and_logged(
    tmp_path: Path, log_records: Callable[[], list[dict[str, Any]]]
) -> None:
    # Allowed in general but denied by a condition that holds now: start-up lets it through,
    # the delivery is refused.
    role = {
        "Statement": [
            {"Effect": "Allow", "Action": "eventrouter:SendMessage", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}},
            },
        ]
    }
    router = Router("conditional", enforce_permissions=True)

    @router.on_event(None, role=role, on_failure=to_queue("dead"), max_retries=0)
    async def charge(event: dict[str, Any]) -> None:
        raise RuntimeError("no")

    async with run_router(router, state_dir=tmp_path) as app:
        await app.invoke_async("charge", {"n": 1})
        delivery, error = await app.wait_failed_delivery()
        assert isinstance(error, AccessDenied), error
        assert delivery.kind == "on_failure"
        assert app.engine.metrics.snapshot()["DestinationAccessDenied"]["charge"] == 1
        assert await app.queue_messages("dead") == []
    refused = [r for r in log_records() if "refused by the function's role" in r["event"]]
    assert refused and json.loads(refused[0]["record"])["requestPayload"] == {"n": 1}


# -- sources as principals -------------------------------------------------------------------


def test_queue_source_needs_a_permission(tmp_path: Path) -> None:
    def build(allowed: bool) -> Router:
        router = Router("queues", enforce_permissions=True)

        @router.on_event(Queue("orders"))
        async def consume(event: dict[str, Any]) -> None: ...

        if allowed:
            router.add_permission("consume", QUEUE_SERVICE, source_arn=queue_arn("orders"))
        return router

    with (
        pytest.raises(ConfigError, match="does not let its source invoke it") as caught,
        TestRouter(build(False), state_dir=tmp_path / "a"),
    ):
        pass
    assert "router.add_permission('consume', principal='queue.eventrouter.local'" in str(
        caught.value
    )
    with TestRouter(build(True), state_dir=tmp_path / "b") as router:
        assert router.engine.ready


# -- hardening -------------------------------------------------------------------------------


def test_secrets_never_reach_the_logs(
    tmp_path: Path, log_records: Callable[[], list[dict[str, Any]]]
) -> None:
    with TestRouter(secure.build(tmp_path), http="127.0.0.1:0") as server:
        lam = lambda_client(server.url)
        lam.invoke(FunctionName="charge", Payload=json.dumps({"secret": BILLING_SECRET}))
        with pytest.raises(ClientError):
            lambda_client(server.url, BILLING_KEY, OTHER_SECRET).invoke(FunctionName="charge")
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/reports", headers={"x-api-key": MOBILE_API_KEY}).status_code == 200
            client.get("/reports", headers={"x-api-key": STRANGER_API_KEY})
            url = f"{server.url}/signed"
            headers = signed_headers(url, body=b"{}")
            assert client.post(url, content=b"{}", headers=headers).status_code == 200
    signature = headers["Authorization"].rsplit("Signature=", 1)[1]
    text = json.dumps(log_records())
    assert "report requested" in text and "charging" in text  # the handlers did log
    for secret in (BILLING_SECRET, OTHER_SECRET, MOBILE_API_KEY, STRANGER_API_KEY, signature):
        assert secret not in text


def test_state_dir_is_private(tmp_path: Path) -> None:
    router = Router("private")

    @router.on_event(None)
    async def noop(event: Any) -> None: ...

    state = tmp_path / "state"
    with TestRouter(router, state_dir=state) as app:
        app.invoke_async("noop", {})
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    files = list(state.rglob("*"))
    assert any(f.name == "queue.db" for f in files)
    for file in files:  # folders (consumers/) 0700, files 0600
        expected = 0o700 if file.is_dir() else 0o600
        assert stat.S_IMODE(file.stat().st_mode) == expected, file.name


def test_to_directory_cannot_be_steered_outside_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    destination = to_directory(folder)
    for key in ("../../escape", "/etc/passwd", "..", "a/../../b", "\x00bad"):
        destination._write(folder, b"{}", key)
    assert not (tmp_path / "escape.json").exists()
    assert all(p.parent == folder for p in folder.rglob("*"))
    # A link planted at the temporary name is replaced, not followed.
    target = tmp_path / "target"
    target.write_text("untouched")
    os.symlink(target, folder / f".rid.{os.getpid()}.tmp")
    destination._write(folder, b'{"ok": 1}', "rid")
    assert target.read_text() == "untouched"
    assert json.loads((folder / "rid.json").read_bytes()) == {"ok": 1}


def test_credentials_file_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"access_keys": [{"id": "A"}]}')
    router = Router("x", enforce_permissions=True, credentials=str(bad))
    with pytest.raises(ConfigError, match=r"credentials file .*bad\.json"):
        TestRouter(router, state_dir=tmp_path / "s").__enter__()


@pytest.mark.anyio
async def test_default_router_says_permissions_are_not_enforced(
    tmp_path: Path, log_records: Callable[[], list[dict[str, Any]]]
) -> None:
    router = Router("open")

    @router.on_event(None)
    async def noop(event: Any) -> None: ...

    async with run_router(router, state_dir=tmp_path):
        await anyio.lowlevel.checkpoint()
    events = [r["event"] for r in log_records()]
    assert any(e.startswith("permissions are not enforced") for e in events)


# -- real sources and destinations -----------------------------------------------------------


@pytest.mark.anyio
async def test_sqs_source_and_destination_under_a_role(moto: str, tmp_path: Path) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto, region_name="us-east-1")
    names = [f"perm-{os.getpid()}-{i}" for i in range(3)]
    urls = [
        sqs.create_queue(QueueName=n, Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
        for n in names
    ]
    source_arn = sqs.get_queue_attributes(QueueUrl=urls[0], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    handled = anyio.Event()

    def build(permission: bool, dead_letters: str) -> Router:
        router = Router("sqs-perm", enforce_permissions=True)
        role = {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sqs:SendMessage",
                    "Resource": f"arn:aws:sqs:*:*:{names[1]}",
                }
            ]
        }

        @router.on_event(
            None, role=role, on_failure=to_sqs(dead_letters, endpoint_url=moto), max_retries=0
        )
        async def fail(event: Any) -> None:
            raise RuntimeError("to the dead letters")

        @router.on_event(Sqs(urls[0], endpoint_url=moto, region="us-east-1"))
        async def consume(event: dict[str, Any]) -> None:
            handled.set()

        if permission:
            router.add_permission("consume", "sqs.amazonaws.com", source_arn=source_arn)
        return router

    with pytest.raises(ConfigError, match="does not let its source invoke it") as caught:
        async with run_router(build(False, urls[1]), state_dir=tmp_path / "a"):
            pass
    assert source_arn in str(caught.value)
    with pytest.raises(ConfigError, match=r"is not allowed: its role"):
        async with run_router(build(True, urls[2]), state_dir=tmp_path / "b"):
            pass
    async with run_router(build(True, urls[1]), state_dir=tmp_path / "c") as app:
        sqs.send_message(QueueUrl=urls[0], MessageBody='{"n": 1}')
        with anyio.fail_after(30):
            await handled.wait()
        await app.invoke_async("fail", {"n": 2})
        record = await app.next_record("fail", "on_failure")
        assert record["requestPayload"] == {"n": 2}
    received = sqs.receive_message(QueueUrl=urls[1], WaitTimeSeconds=1)["Messages"]
    assert json.loads(received[0]["Body"])["requestPayload"] == {"n": 2}


def test_kafka_source_needs_a_permission(kafka: str, tmp_path: Path) -> None:
    router = Router("kafka-perm", enforce_permissions=True)

    @router.on_event(Kafka("orders-perm", bootstrap_servers=kafka, group="perm"))
    async def consume(event: Any) -> None: ...

    with (
        pytest.raises(ConfigError, match=r"principal kafka\.amazonaws\.com") as caught,
        TestRouter(router, state_dir=tmp_path),
    ):
        pass
    assert "arn:aws:kafka:" in str(caught.value) and "topic/orders-perm" in str(caught.value)
