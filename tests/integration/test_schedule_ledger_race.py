"""The DynamoDB ledger of schedules shared by hosts: each due time fires once, whatever the
interleaving of two hosts' conditional writes (moto's DynamoDB; the interleaving is forced
with a store that holds each send until the test lets it go)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from eventrouter.lease_table import ensure_table
from eventrouter.services.clients import Clients
from eventrouter.sources.schedule.dynamo import DynamoLedger
from tests.kafka_broker import unique

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
ARN = "arn:aws:scheduler:us-east-1:000000000000:schedule/default/tick"


class HeldStore:
    """A store whose sends wait until the test releases them; it keeps what was sent."""

    def __init__(self, sent: list[str]) -> None:
        self.sent = sent
        self.release = anyio.Event()
        self.entered = anyio.Event()

    async def enqueue(self, queue: str, request_id: str, payload: bytes) -> None:
        self.entered.set()
        await self.release.wait()
        self.sent.append(request_id)


async def test_a_hosts_advance_never_frees_a_later_due_time_another_host_holds(
    moto: str,
) -> None:
    table = unique("leases")
    sent: list[str] = []
    clients = Clients()
    try:
        dynamo: Any = await clients.aws("dynamodb", "us-east-1", moto)
        a_store, b_store = HeldStore(sent), HeldStore(sent)
        a = DynamoLedger(dynamo, table, a_store)  # type: ignore[arg-type]
        b = DynamoLedger(dynamo, table, b_store)  # type: ignore[arg-type]
        await ensure_table(dynamo, table)
        await a.load_many([(ARN, "rate(1 second)")], 100.0)
        results: dict[str, bool] = {}

        async def fire(name: str, ledger: DynamoLedger, due: float) -> None:
            results[name] = await ledger.fire(ARN, due, "fn:tick", name, b"{}")

        async with anyio.create_task_group() as tg:
            tg.start_soon(fire, "a@101", a, 101.0)  # A takes 101, is slow to send it
            await a_store.entered.wait()
            tg.start_soon(fire, "b@102", b, 102.0)  # B takes 102 meanwhile
            await b_store.entered.wait()
            a_store.release.set()  # A sends 101 and advances past it
            with anyio.fail_after(10):
                while "a@101" not in results:  # noqa: ASYNC110 - the ledger has no event
                    await anyio.sleep(0.01)
            # A's own timer reaches 102: B holds it, so A must not fire it.
            results["a@102"] = await a.fire(ARN, 102.0, "fn:tick", "a@102", b"{}")
            b_store.release.set()
        assert results == {"a@101": True, "b@102": True, "a@102": False}
        assert sorted(sent) == ["a@101", "b@102"]
        (state,) = await a.states()
        assert state.last_due == 102.0
    finally:
        await clients.close()
