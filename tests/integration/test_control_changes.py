"""Changing a running router through Lambda's control plane, with boto3: resource policies
(``AddPermission`` / ``RemovePermission`` and ``RevisionId``), IAM checks of the control
actions, ``UpdateFunctionConfiguration`` and event-invoke configs. Each change applies at
once and survives a restart."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

from eventrouter import Context, Router
from eventrouter.testing import run_router
from tests.apps.secure import OPS, OPS_BILLING, operator_credentials
from tests.services import lambda_client

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

BILLING = OPS_BILLING
#: ``ops`` may look and change permissions, but not remove those of ``keep``.
OPS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["lambda:Get*", "lambda:List*", "lambda:*Permission"],
            "Resource": "*",
        },
        {
            "Effect": "Deny",
            "Action": "lambda:RemovePermission",
            "Resource": "arn:aws:lambda:*:*:function:keep",
        },
    ],
}


def secured_router(folder: Path) -> Router:
    credentials = operator_credentials(folder, OPS_POLICY)
    router = Router("secured", enforce_permissions=True, credentials=str(credentials))

    @router.on_event(None)
    async def report(event: Any) -> str:
        return "report"

    @router.on_event(None)
    async def keep(event: Any) -> str:
        return "keep"

    return router


def code(call: Any) -> str:
    """The error code of a boto3 call, or ``"ok"``."""
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


async def test_add_and_remove_permission_change_who_may_invoke(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with run_router(secured_router(tmp_path), state_dir=state, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def calls() -> dict[str, Any]:
            ops = lambda_client(url, *OPS)
            billing = lambda_client(url, *BILLING)
            got: dict[str, Any] = {
                "before": code(lambda: billing.invoke(FunctionName="report")),
                "no policy": code(lambda: ops.get_policy(FunctionName="report")),
                "billing lists": code(lambda: billing.list_functions()),
                "billing adds": code(
                    lambda: billing.add_permission(
                        FunctionName="report",
                        StatementId="self",
                        Action="lambda:InvokeFunction",
                        Principal="arn:aws:iam::000000000000:user/billing",
                    )
                ),
                "ops lists": len(ops.list_functions()["Functions"]),
            }
            added = ops.add_permission(
                FunctionName="report",
                StatementId="billing-reads",
                Action="lambda:InvokeFunction",
                Principal="arn:aws:iam::000000000000:user/billing",
            )
            got["statement"] = json.loads(added["Statement"])
            got["after"] = billing.invoke(FunctionName="report")["Payload"].read()
            got["duplicate"] = code(
                lambda: ops.add_permission(
                    FunctionName="report",
                    StatementId="billing-reads",
                    Action="lambda:InvokeFunction",
                    Principal="*",
                )
            )
            revision = ops.get_policy(FunctionName="report")["RevisionId"]
            got["stale"] = code(
                lambda: ops.remove_permission(
                    FunctionName="report", StatementId="billing-reads", RevisionId="0" * 32
                )
            )
            got["still"] = code(lambda: billing.invoke(FunctionName="report"))
            ops.add_permission(
                FunctionName="keep",
                StatementId="billing-keeps",
                Action="lambda:InvokeFunction",
                Principal="arn:aws:iam::000000000000:user/billing",
            )
            got["denied removal"] = code(
                lambda: ops.remove_permission(FunctionName="keep", StatementId="billing-keeps")
            )
            got["revision"] = revision
            return got

        got = await anyio.to_thread.run_sync(calls)
    assert got["before"] == "AccessDeniedException"
    assert got["no policy"] == "ResourceNotFoundException"
    assert got["billing lists"] == "AccessDeniedException"  # no identity policy
    assert got["billing adds"] == "AccessDeniedException"
    assert got["ops lists"] == 2
    assert got["statement"] == {
        "Sid": "billing-reads",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::000000000000:user/billing"},
        "Action": "lambda:InvokeFunction",
        "Resource": "arn:aws:lambda:us-east-1:000000000000:function:report",
    }
    assert got["after"] == b'"report"'  # allowed at once
    assert got["duplicate"] == "ResourceConflictException"
    assert got["stale"] == "PreconditionFailedException"
    assert got["still"] == "ok"  # the stale removal changed nothing
    assert got["denied removal"] == "AccessDeniedException"  # the explicit Deny wins

    # Kept across a restart; then removed with the current revision.
    async with run_router(secured_router(tmp_path), state_dir=state, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def later() -> tuple[str, str, str]:
            ops = lambda_client(url, *OPS)
            billing = lambda_client(url, *BILLING)
            kept = code(lambda: billing.invoke(FunctionName="report"))
            revision = ops.get_policy(FunctionName="report")["RevisionId"]
            ops.remove_permission(
                FunctionName="report", StatementId="billing-reads", RevisionId=revision
            )
            gone = code(lambda: billing.invoke(FunctionName="report"))
            missing = code(
                lambda: ops.remove_permission(FunctionName="report", StatementId="billing-reads")
            )
            return kept, gone, missing

        kept, gone, missing = await anyio.to_thread.run_sync(later)
    assert (kept, gone, missing) == ("ok", "AccessDeniedException", "ResourceNotFoundException")


def configurable_router() -> Router:
    router = Router("configurable")

    @router.on_event(None, timeout=1, memory_mb=256)
    async def clock(event: Any, ctx: Context) -> dict[str, Any]:
        return {
            "remaining": ctx.get_remaining_time_in_millis(),
            "memory": ctx.memory_limit_in_mb,
        }

    router.on_event(None, isolation="process", env={"GREETING": "hello"})(greet)
    return router


def greet(event: Any) -> dict[str, Any]:
    """Runs in a process of its own (imported there by name)."""
    return {"greeting": os.environ.get("GREETING"), "pid": os.getpid()}


async def test_update_function_configuration(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with run_router(configurable_router(), state_dir=state, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def calls() -> dict[str, Any]:
            client = lambda_client(url)

            def invoke(name: str) -> Any:
                return json.loads(client.invoke(FunctionName=name)["Payload"].read())

            got: dict[str, Any] = {"before": invoke("clock"), "greet before": invoke("greet")}
            revision = client.get_function_configuration(FunctionName="clock")["RevisionId"]
            got["answer"] = client.update_function_configuration(
                FunctionName="clock", Timeout=5, MemorySize=512, RevisionId=revision
            )
            got["after"] = invoke("clock")
            got["stale"] = code(
                lambda: client.update_function_configuration(
                    FunctionName="clock", Timeout=6, RevisionId=revision
                )
            )
            got["too long"] = code(
                lambda: client.update_function_configuration(FunctionName="clock", Timeout=901)
            )
            got["inline env"] = code(
                lambda: client.update_function_configuration(
                    FunctionName="clock", Environment={"Variables": {"A": "b"}}
                )
            )
            got["unsupported"] = code(
                lambda: client.update_function_configuration(FunctionName="clock", Handler="x.y")
            )
            client.update_function_configuration(
                FunctionName="greet", Environment={"Variables": {"GREETING": "bonjour"}}
            )
            got["greet after"] = invoke("greet")
            got["greet config"] = client.get_function_configuration(FunctionName="greet")
            return got

        got = await anyio.to_thread.run_sync(calls)
    assert got["before"]["remaining"] <= 1000 and got["before"]["memory"] == "256"
    assert got["answer"]["Timeout"] == 5 and got["answer"]["MemorySize"] == 512
    assert 1000 < got["after"]["remaining"] <= 5000 and got["after"]["memory"] == "512"
    assert got["stale"] == "PreconditionFailedException"
    assert got["too long"] == "InvalidParameterValueException"
    assert got["inline env"] == "InvalidParameterValueException"
    assert got["unsupported"] == "InvalidParameterValueException"
    assert got["greet before"]["greeting"] == "hello"
    # The environment was replaced: a new process with the new variables.
    assert got["greet after"]["greeting"] == "bonjour"
    assert got["greet after"]["pid"] != got["greet before"]["pid"]
    assert got["greet config"]["Environment"] == {"Variables": {"GREETING": "bonjour"}}

    async with run_router(configurable_router(), state_dir=state, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def later() -> tuple[dict[str, Any], Any]:
            client = lambda_client(url)
            configuration = client.get_function_configuration(FunctionName="clock")
            return configuration, json.loads(client.invoke(FunctionName="greet")["Payload"].read())

        configuration, greeting = await anyio.to_thread.run_sync(later)
    assert (configuration["Timeout"], configuration["MemorySize"]) == (5, 512)
    assert greeting["greeting"] == "bonjour"


def async_router(collected: list[Any], arrived: anyio.Event) -> Router:
    router = Router("async-config")

    @router.on_event(None, max_retries=2, retry_delays=(0.05, 0.05))
    async def flaky(event: Any) -> None:
        raise RuntimeError("always")

    @router.on_event(None)
    async def collector(record: Any) -> None:
        collected.append(record)
        arrived.set()

    return router


async def test_event_invoke_config_sets_retries_and_destinations(tmp_path: Path) -> None:
    collected: list[Any] = []
    arrived = anyio.Event()
    collector_arn = "arn:aws:lambda:us-east-1:000000000000:function:collector"
    async with run_router(
        async_router(collected, arrived), state_dir=tmp_path / "state", http="127.0.0.1:0"
    ) as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def configure() -> dict[str, Any]:
            client = lambda_client(url)
            got: dict[str, Any] = {
                "none": code(lambda: client.get_function_event_invoke_config(FunctionName="flaky"))
            }
            got["put"] = client.put_function_event_invoke_config(
                FunctionName="flaky",
                MaximumRetryAttempts=0,
                DestinationConfig={"OnFailure": {"Destination": collector_arn}},
            )
            got["update"] = client.update_function_event_invoke_config(
                FunctionName="flaky", MaximumEventAgeInSeconds=600
            )
            got["list"] = client.list_function_event_invoke_configs(FunctionName="flaky")
            got["bad arn"] = code(
                lambda: client.put_function_event_invoke_config(
                    FunctionName="flaky",
                    DestinationConfig={
                        "OnFailure": {"Destination": "arn:aws:lambda:us-east-1:0:function:nobody"}
                    },
                )
            )
            got["bad retries"] = code(
                lambda: client.put_function_event_invoke_config(
                    FunctionName="flaky", MaximumRetryAttempts=3
                )
            )
            client.invoke(FunctionName="flaky", InvocationType="Event", Payload=b'{"n": 1}')
            return got

        got = await anyio.to_thread.run_sync(configure)
        with anyio.fail_after(20):
            await arrived.wait()

        def delete() -> tuple[str, str]:
            client = lambda_client(url)
            client.delete_function_event_invoke_config(FunctionName="flaky")
            return (
                code(lambda: client.get_function_event_invoke_config(FunctionName="flaky")),
                code(lambda: client.delete_function_event_invoke_config(FunctionName="flaky")),
            )

        after_delete = await anyio.to_thread.run_sync(delete)
        settings = app.engine.router.functions["flaky"].settings
    assert got["none"] == "ResourceNotFoundException"
    assert got["put"]["MaximumRetryAttempts"] == 0
    assert got["put"]["DestinationConfig"]["OnFailure"] == {"Destination": collector_arn}
    # Update keeps what it does not name; Put replaced the code's max_event_age default.
    assert got["update"]["MaximumRetryAttempts"] == 0
    assert got["update"]["MaximumEventAgeInSeconds"] == 600
    assert got["list"]["FunctionEventInvokeConfigs"][0]["MaximumEventAgeInSeconds"] == 600
    assert got["bad arn"] == "InvalidParameterValueException"
    assert got["bad retries"] == "InvalidParameterValueException"
    (record,) = collected
    assert record["requestPayload"] == {"n": 1}
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1  # no retry: the config's 0
    assert after_delete == ("ResourceNotFoundException", "ResourceNotFoundException")
    assert (settings.max_retries, settings.on_failure) == (2, None)  # back to the code's


async def test_recursion_config(tmp_path: Path) -> None:
    async with run_router(configurable_router(), state_dir=tmp_path, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def calls() -> tuple[str, str, str, str]:
            client = lambda_client(url)
            before = client.get_function_recursion_config(FunctionName="clock")["RecursiveLoop"]
            client.put_function_recursion_config(FunctionName="clock", RecursiveLoop="Allow")
            after = client.get_function_recursion_config(FunctionName="clock")["RecursiveLoop"]
            bad = code(
                lambda: client.put_function_recursion_config(
                    FunctionName="clock", RecursiveLoop="Sometimes"
                )
            )
            return before, after, bad, app.engine.router.functions["clock"].settings.recursive_loop

        before, after, bad, applied = await anyio.to_thread.run_sync(calls)
    assert (before, after, applied) == ("Terminate", "Allow", "Allow")
    assert bad == "InvalidParameterValueException"
