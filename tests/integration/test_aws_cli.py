"""An operator's session with the AWS CLI (v1, from PyPI, in ``.venv-awscli``: ``make test``
installs it) against a running router with enforced permissions: look, throttle, grant, pause
a source."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventrouter import Context, Queue, Router, to_queue
from eventrouter.arns import queue_arn
from eventrouter.sources.queue.source import QUEUE_SERVICE
from eventrouter.testing import run_router
from tests.apps.secure import OPS, OPS_BILLING, operator_credentials

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

AWS = Path(__file__).resolve().parents[2] / ".venv-awscli" / "bin" / "aws"
BILLING = OPS_BILLING
BILLING_ARN = "arn:aws:iam::000000000000:user/billing"

needs_cli = pytest.mark.skipif(not AWS.exists(), reason="the AWS CLI is not installed (make test)")


def cli_router(folder: Path, seen: list[Any], sentinel: anyio.Event) -> Router:
    ops_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}],
    }
    credentials = operator_credentials(folder, ops_policy)
    router = Router("cli", enforce_permissions=True, credentials=str(credentials))
    sends = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "eventrouter:SendMessage", "Resource": "*"}],
    }

    @router.on_event(None)
    async def report(event: Any) -> str:
        return "report"

    @router.on_event(None, role=sends)
    async def feed(event: Any, ctx: Context) -> None:
        for n in event["numbers"]:
            await ctx.send(to_queue("jobs"), {"n": n})

    @router.on_event(Queue("jobs", batch_size=10))
    async def work(batch: list[Any]) -> None:
        seen.append([m["n"] for m in batch])

    @router.on_event(None)
    async def mark(event: Any) -> None:
        sentinel.set()

    router.add_permission("work", QUEUE_SERVICE, source_arn=queue_arn("jobs"))
    return router


@needs_cli
async def test_operator_session_with_the_aws_cli(tmp_path: Path) -> None:
    seen: list[Any] = []
    sentinel = anyio.Event()
    router = cli_router(tmp_path, seen, sentinel)
    async with run_router(router, state_dir=tmp_path / "state", http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        async def aws(key: tuple[str, str], *args: str) -> tuple[int, Any, str]:
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": str(tmp_path),
                "AWS_ACCESS_KEY_ID": key[0],
                "AWS_SECRET_ACCESS_KEY": key[1],
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_MAX_ATTEMPTS": "1",
            }
            command = [str(AWS), "--endpoint-url", url, "--output", "json", "lambda", *args]
            done = await anyio.run_process(command, env=env, cwd=tmp_path, check=False)
            out = done.stdout.decode()
            return done.returncode, json.loads(out) if out.strip() else None, done.stderr.decode()

        code, listed, _ = await aws(OPS, "list-functions")
        assert code == 0
        assert sorted(f["FunctionName"] for f in listed["Functions"]) == [
            "feed",
            "mark",
            "report",
            "work",
        ]
        code, config, _ = await aws(OPS, "get-function-configuration", "--function-name", "report")
        assert (code, config["Timeout"], config["Handler"]) == (0, 3, f"{__name__}.report")

        # A reservation of 0 throttles the next invocation; deleting it restores the code's.
        code, _, _ = await aws(
            OPS,
            "put-function-concurrency",
            "--function-name",
            "report",
            "--reserved-concurrent-executions",
            "0",
        )
        assert code == 0
        code, _, error = await aws(OPS, "invoke", "--function-name", "report", "out.json")
        assert code != 0 and "TooManyRequestsException" in error
        await aws(OPS, "delete-function-concurrency", "--function-name", "report")
        code, _, _ = await aws(OPS, "invoke", "--function-name", "report", "out.json")
        assert code == 0 and (tmp_path / "out.json").read_text() == '"report"'

        # billing is refused, until a permission names it.
        code, _, error = await aws(BILLING, "invoke", "--function-name", "report", "out.json")
        assert code != 0 and "AccessDeniedException" in error
        code, _, error = await aws(
            BILLING,
            "add-permission",
            "--function-name",
            "report",
            "--statement-id",
            "self-service",
            "--action",
            "lambda:InvokeFunction",
            "--principal",
            BILLING_ARN,
        )
        assert code != 0 and "AccessDeniedException" in error
        code, added, _ = await aws(
            OPS,
            "add-permission",
            "--function-name",
            "report",
            "--statement-id",
            "billing",
            "--action",
            "lambda:InvokeFunction",
            "--principal",
            BILLING_ARN,
        )
        assert code == 0 and json.loads(added["Statement"])["Principal"] == {"AWS": BILLING_ARN}
        (tmp_path / "out.json").unlink()
        code, _, _ = await aws(BILLING, "invoke", "--function-name", "report", "out.json")
        assert code == 0 and (tmp_path / "out.json").read_text() == '"report"'

        # A disabled mapping leaves its queue alone; enabled again, it drains it.
        code, mappings, _ = await aws(OPS, "list-event-source-mappings", "--function-name", "work")
        (mapping,) = mappings["EventSourceMappings"]
        code, changed, _ = await aws(
            OPS, "update-event-source-mapping", "--uuid", mapping["UUID"], "--no-enabled"
        )
        assert (code, changed["State"]) == (0, "Disabled")
        payload = json.dumps({"numbers": [1, 2]})
        for function, extra in (("feed", []), ("mark", ["--invocation-type", "Event"])):
            code, _, error = await aws(
                OPS,
                "invoke",
                "--function-name",
                function,
                "--payload",
                payload,
                *extra,
                "out.json",
            )
            assert code == 0, error
        with anyio.fail_after(20):
            await sentinel.wait()  # queued after the messages, and run: they were not taken
        assert seen == []
        code, changed, _ = await aws(
            OPS, "update-event-source-mapping", "--uuid", mapping["UUID"], "--enabled"
        )
        assert (code, changed["State"]) == (0, "Enabled")
        await app.drain()
    assert seen == [[1, 2]]
