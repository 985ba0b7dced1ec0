"""Lambda's control plane (read side) on a running router, through boto3: every answer goes
through botocore's parser, so field names, types and error classes are the SDK's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from eventrouter import Http, Permission, Router
from eventrouter.testing import run_router
from tests.services import lambda_client

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def control_router() -> Router:
    router = Router("control", max_concurrency=100)

    @router.on_event(Http("GET /hello"), timeout=2.5, memory_mb=256)
    async def hello(event: dict[str, Any]) -> dict[str, str]:
        return {"hello": "world"}

    @router.on_event(
        None,
        reserved_concurrency=7,
        log_format="JSON",
        permissions=[Permission(principal="billing", sid="billing-may-invoke")],
    )
    async def charge(event: dict[str, Any]) -> None:
        return None

    queue_arn = "arn:aws:sqs:us-east-1:000000000000:orders"
    router.add_permission("charge", "sqs.amazonaws.com", source_arn=queue_arn, sid="from-sqs")

    for n in range(3):

        @router.on_event(None, name=f"extra-{n}")
        async def extra(event: dict[str, Any]) -> None:
            return None

    return router


async def test_list_get_and_account_settings() -> None:
    async with run_router(control_router(), http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def calls() -> dict[str, Any]:
            client = lambda_client(url)
            pages = []
            marker: dict[str, str] = {}
            while True:
                page = client.list_functions(MaxItems=2, **marker)
                pages.append([f["FunctionName"] for f in page["Functions"]])
                if "NextMarker" not in page:
                    break
                marker = {"Marker": page["NextMarker"]}
            every = [
                f["FunctionName"]
                for p in client.get_paginator("list_functions").paginate()
                for f in p["Functions"]
            ]
            try:
                client.get_function(FunctionName="nobody")
            except client.exceptions.ResourceNotFoundException as exc:
                missing = exc.response["Error"]["Code"]
            return {
                "pages": pages,
                "every": every,
                "hello": client.get_function_configuration(FunctionName="hello"),
                "charge": client.get_function(FunctionName="charge"),
                "by_arn": client.get_function_configuration(
                    FunctionName="arn:aws:lambda:us-east-1:000000000000:function:charge"
                ),
                "reserved": client.get_function_concurrency(FunctionName="charge"),
                "unreserved": client.get_function_concurrency(FunctionName="hello"),
                "account": client.get_account_settings(),
                "missing": missing,
            }

        got = await anyio.to_thread.run_sync(calls)
    names = ["charge", "extra-0", "extra-1", "extra-2", "hello"]
    assert got["pages"] == [names[:2], names[2:4], names[4:]]
    assert got["every"] == names
    hello = got["hello"]
    assert hello["FunctionArn"].endswith(":function:hello")
    assert (hello["Timeout"], hello["MemorySize"]) == (3, 256)  # whole seconds, rounded up
    assert hello["Handler"].endswith(".hello") and hello["Runtime"].startswith("python3.")
    assert (hello["State"], hello["Version"], hello["PackageType"]) == ("Active", "$LATEST", "Zip")
    assert hello["Role"] == "arn:aws:iam::000000000000:role/hello"
    charge = got["charge"]
    assert charge["Configuration"]["LoggingConfig"]["LogFormat"] == "JSON"
    assert charge["Concurrency"] == {"ReservedConcurrentExecutions": 7}
    assert got["by_arn"]["FunctionName"] == "charge"
    assert got["reserved"]["ReservedConcurrentExecutions"] == 7
    assert "ReservedConcurrentExecutions" not in got["unreserved"]
    limits = got["account"]["AccountLimit"]
    assert (limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]) == (100, 93)
    assert got["account"]["AccountUsage"]["FunctionCount"] == 5
    assert got["missing"] == "ResourceNotFoundException"


async def test_bad_parameters() -> None:
    async with run_router(control_router(), http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def bad() -> str:
            client = lambda_client(url)
            try:
                client.list_functions(Marker="nobody")
            except client.exceptions.InvalidParameterValueException as exc:
                return str(exc.response["Error"]["Code"])
            return "no error"

        assert await anyio.to_thread.run_sync(bad) == "InvalidParameterValueException"


async def test_concurrency_changes_apply_at_once_and_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"

    async def hello_status(url: str) -> int:
        async with httpx.AsyncClient(base_url=url) as client:
            return (await client.get("/hello")).status_code

    async with run_router(control_router(), state_dir=state, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"
        assert await hello_status(url) == 200

        def change() -> tuple[dict[str, Any], str]:
            client = lambda_client(url)
            client.put_function_concurrency(FunctionName="hello", ReservedConcurrentExecutions=0)
            try:
                client.put_function_concurrency(
                    FunctionName="charge", ReservedConcurrentExecutions=1000
                )
            except client.exceptions.InvalidParameterValueException as exc:
                refused = str(exc.response["Error"]["Code"])
            return client.get_function_concurrency(FunctionName="hello"), refused

        now, refused = await anyio.to_thread.run_sync(change)
        assert now["ReservedConcurrentExecutions"] == 0
        assert refused == "InvalidParameterValueException"  # over max_concurrency=100
        assert await hello_status(url) == 429  # throttled by the new reservation, at once
    async with run_router(control_router(), state_dir=state, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"
        assert await hello_status(url) == 429  # kept across the restart

        def delete() -> tuple[dict[str, Any], dict[str, Any]]:
            client = lambda_client(url)
            client.delete_function_concurrency(FunctionName="hello")
            client.put_function_concurrency(FunctionName="charge", ReservedConcurrentExecutions=2)
            client.delete_function_concurrency(FunctionName="charge")
            return (
                client.get_function_concurrency(FunctionName="hello"),
                client.get_function_concurrency(FunctionName="charge"),
            )

        hello, charge = await anyio.to_thread.run_sync(delete)
        assert "ReservedConcurrentExecutions" not in hello  # back to what the code says
        assert charge["ReservedConcurrentExecutions"] == 7
        assert await hello_status(url) == 200


async def test_get_policy_answers_the_statements_as_written() -> None:
    async with run_router(control_router(), http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def calls() -> tuple[dict[str, Any], str]:
            client = lambda_client(url)
            try:
                client.get_policy(FunctionName="hello")
            except client.exceptions.ResourceNotFoundException as exc:
                missing = str(exc.response["Error"]["Code"])
            return client.get_policy(FunctionName="charge"), missing

        answer, missing = await anyio.to_thread.run_sync(calls)
    policy = json.loads(answer["Policy"])
    assert policy["Version"] == "2012-10-17" and answer["RevisionId"]
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["billing-may-invoke"]["Principal"] == {
        "AWS": "arn:aws:iam::000000000000:user/billing"
    }
    assert by_sid["from-sqs"]["Principal"] == {"Service": "sqs.amazonaws.com"}
    assert by_sid["from-sqs"]["Condition"] == {
        "ArnLike": {"AWS:SourceArn": "arn:aws:sqs:us-east-1:000000000000:orders"}
    }
    assert all(s["Resource"].endswith(":function:charge") for s in policy["Statement"])
    assert missing == "ResourceNotFoundException"  # hello has no resource policy
