"""A router that enforces permissions (tests of issue 6): callers, roles, sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eventrouter import Http, Permission, Router, to_directory, to_queue
from eventrouter.context import Context

BILLING_KEY = "AKIAEXAMPLEBILLING01"
BILLING_SECRET = "billing-secret-0123456789abcdefghijklmnop"
OTHER_KEY = "AKIAEXAMPLEOTHER0001"
OTHER_SECRET = "other-secret-0123456789abcdefghijklmnopqr"
MOBILE_API_KEY = "mobile-api-key-0123456789abcdef"
STRANGER_API_KEY = "stranger-api-key-0123456789abcdef"


OPS = ("AKIAEXAMPLEOPERATOR1", "ops-secret")
OPS_BILLING = ("AKIAEXAMPLEBILLING01", "billing-secret")


def operator_credentials(folder: Path, ops_policy: dict[str, Any]) -> Path:
    """A credentials file of two access keys: ``ops`` with ``ops_policy`` as its identity
    policy, ``billing`` with none (the control-plane tests)."""
    path = folder / "credentials.json"
    keys = [
        {"id": OPS[0], "secret": OPS[1], "principal": "ops", "policy": ops_policy},
        {"id": OPS_BILLING[0], "secret": OPS_BILLING[1], "principal": "billing"},
    ]
    path.write_text(json.dumps({"access_keys": keys}))
    path.chmod(0o600)
    return path


def write_credentials(folder: Path) -> Path:
    path = folder / "credentials.json"
    path.write_text(
        json.dumps(
            {
                "access_keys": [
                    {"id": BILLING_KEY, "secret": BILLING_SECRET, "principal": "billing"},
                    {"id": OTHER_KEY, "secret": OTHER_SECRET, "principal": "other"},
                ],
                "api_keys": [
                    {"key": MOBILE_API_KEY, "principal": "mobile"},
                    {"key": STRANGER_API_KEY, "principal": "stranger"},
                ],
            }
        )
    )
    path.chmod(0o600)
    return path


def build(folder: Path) -> Router:
    """The router, with its credentials and destination folder under ``folder``."""
    router = Router("secure", enforce_permissions=True, credentials=str(write_credentials(folder)))
    failed = folder / "failed"

    @router.on_event(None, permissions=[Permission(principal="billing")])
    async def charge(event: dict[str, Any], ctx: Context) -> dict[str, Any]:
        ctx.log.info("charging", payload=event)
        return {"charged": event.get("amount")}

    @router.on_event(None)
    async def refund(event: dict[str, Any]) -> dict[str, Any]:
        return {"refunded": True}

    @router.on_event(Http("GET /reports", auth="API_KEY"))
    async def reports(event: dict[str, Any], ctx: Context) -> dict[str, Any]:
        # Logs the whole request, headers and all: the redactor must keep the key out.
        ctx.log.info("report requested", request=event)
        return {"reports": 2}

    router.add_permission("reports", "mobile", action="lambda:InvokeFunctionUrl")

    @router.on_event(Http("GET /private"))
    async def private(event: dict[str, Any]) -> dict[str, Any]:
        return {"private": True}

    @router.on_event(
        Http("GET /hello"),
        permissions=[Permission(principal="*", action="lambda:InvokeFunctionUrl")],
    )
    async def hello(event: dict[str, Any]) -> dict[str, Any]:
        return {"hello": "world"}

    @router.on_event(Http("POST /signed", auth="AWS_IAM"))
    async def signed(event: dict[str, Any]) -> dict[str, Any]:
        return {"signed": True}

    router.add_permission("signed", "billing", action="lambda:InvokeFunctionUrl")

    # A role that allows one destination folder and invoking refund, not the queue.
    role = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "eventrouter:WriteFile",
                "Resource": to_directory(failed).permission("x")[1],
            },
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": "arn:aws:lambda:*:*:function:refund",
            },
        ],
    }

    @router.on_event(None, role=role, on_failure=to_directory(failed), max_retries=0)
    async def worker(event: dict[str, Any], ctx: Context) -> Any:
        if event.get("call"):
            return await ctx.invoke(event["call"], {})
        if event.get("send"):
            await ctx.send(to_queue("audit"), {"sent": True})
            return "sent"
        raise RuntimeError("worker failed")

    return router
