"""``Router(async_queue=Sqs(...))``: asynchronous invocation through SQS (moto)."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import boto3
import pytest

from eventrouter import Context, Router, Sqs, to_queue
from eventrouter.services.clients import Clients
from eventrouter.testing import run_router
from tests.kafka_broker import unique

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def shared_queue(moto: str) -> Sqs:
    name = unique("async")
    boto3.client("sqs", endpoint_url=moto, region_name="us-east-1").create_queue(QueueName=name)
    return Sqs(name, endpoint_url=moto, region="us-east-1")


async def test_success_and_retries_through_sqs(moto: str) -> None:
    router = Router("t", async_queue=shared_queue(moto))
    attempts: list[int] = []

    @router.on_event(on_success=to_queue("ok"))
    async def double(n: int) -> int:
        return n * 2

    @router.on_event(max_retries=1, retry_delays=(1,), on_failure=to_queue("failed"))
    async def flaky(event: Any, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError(f"attempt {ctx.attempt}")

    async with run_router(router) as app:
        request_id = await app.invoke_async("double", 21)
        ok = await app.next_record("double", "on_success")
        failed_id = await app.invoke_async("flaky", {"x": 1})
        failed = await app.next_record("flaky", "on_failure", timeout=30)
    assert ok["requestContext"]["requestId"] == request_id
    assert ok["responsePayload"] == 42
    assert attempts == [1, 2]
    assert failed["requestContext"]["requestId"] == failed_id
    assert failed["requestContext"]["condition"] == "RetriesExhausted"
    assert failed["requestContext"]["approximateInvokeCount"] == 2
    assert failed["requestPayload"] == {"x": 1}


async def test_two_hosts_share_one_queue(moto: str, tmp_path: Any) -> None:
    queue = shared_queue(moto)
    seen: dict[str, list[int]] = {"a": [], "b": []}
    all_done = anyio.Event()

    def host(label: str) -> Router:
        router = Router(label, async_queue=queue)

        @router.on_event(name="work")
        async def work(n: int) -> None:
            seen[label].append(n)
            if len(seen["a"]) + len(seen["b"]) >= 40:
                all_done.set()
            await anyio.sleep(0.01)  # a little work, so that both hosts get some

        return router

    async with (
        run_router(host("a"), state_dir=tmp_path / "a") as a,
        run_router(host("b"), state_dir=tmp_path / "b"),
    ):
        for n in range(40):
            await a.invoke_async("work", n)
        with anyio.fail_after(30):
            await all_done.wait()
    assert sorted(seen["a"] + seen["b"]) == list(range(40))
    assert seen["a"] and seen["b"]  # both hosts took events


def test_async_queue_must_be_sqs() -> None:
    from eventrouter import ConfigError

    with pytest.raises(ConfigError, match="async_queue"):
        Router("t", async_queue="sqs://nope")  # type: ignore[arg-type]


@pytest.fixture
def atomic_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies a conditional write atomically; moto's server does not: it reads the
    item, evaluates the condition and writes in Python, in a thread per request, and under
    load a thread switch between the check and the write lets two hosts' writes both pass
    (seen: one due time fired by both hosts with the suite beside a CPU hog). The hosts of
    this test share one process, so their DynamoDB writes are serialised here, as DynamoDB
    itself would order them; the framework's code is unchanged. The interleavings the rule
    must survive are forced one by one in ``test_schedule_ledger_race.py``."""
    original = Clients.aws
    lock = asyncio.Lock()

    async def aws(self: Clients, service: str, *args: Any, **kwargs: Any) -> Any:
        client = await original(self, service, *args, **kwargs)
        if service == "dynamodb" and not getattr(client, "_serialised", False):
            for name in ("update_item", "put_item", "delete_item"):
                call = getattr(client, name)

                async def serial(*a: Any, _call: Any = call, **kw: Any) -> Any:
                    async with lock:
                        return await _call(*a, **kw)

                setattr(client, name, serial)
            client._serialised = True
        return client

    monkeypatch.setattr(Clients, "aws", aws)


@pytest.mark.usefixtures("atomic_dynamodb")
async def test_two_hosts_fire_each_due_time_once(moto: str) -> None:
    from eventrouter import Schedule

    queue = shared_queue(moto)
    table = unique("leases")
    fires: dict[str, list[tuple[str, str]]] = {"a": [], "b": []}
    enough = anyio.Event()

    def host(label: str) -> Router:
        router = Router(label, async_queue=queue, lease_table=table)

        @router.on_event(Schedule("rate(1 second)"), name="tick")
        async def tick(event: dict[str, Any], ctx: Context) -> None:
            fires[label].append((event["time"], ctx.aws_request_id))
            if len({t for f in fires.values() for t, _ in f}) >= 5:
                enough.set()

        return router

    async with run_router(host("a")) as a, run_router(host("b")) as b:
        with anyio.fail_after(30):
            await enough.wait()
    # Counted once both stopped: a host counts a fire after its ledger call returns.
    fired = a.engine.metrics.get("ScheduleFires") + b.engine.metrics.get("ScheduleFires")
    by_time: dict[str, set[str]] = {}
    for time_, request_id in fires["a"] + fires["b"]:
        by_time.setdefault(time_, set()).add(request_id)
    # One fire (one request id) per due time across both hosts; redeliveries keep their id.
    assert all(len(ids) == 1 for ids in by_time.values()), by_time
    assert len(by_time) >= 5
    # Each host has one writer: at most one fire of each is on its way when it stops, either
    # sent and not yet run (counted, not seen) or sent and run by the other host while the
    # stopping host's ledger call was cut short (seen, not counted).
    assert len(by_time) - 2 <= fired <= len(by_time) + 2
    items = boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1").scan(
        TableName=table
    )["Items"]
    assert [i["pk"]["S"] for i in items] == [Schedule("rate(1 second)", name="tick").arn]
