"""The schedules' ledger on DynamoDB, for hosts sharing an SQS-backed queue.

``Router(async_queue=Sqs(...), lease_table="eventrouter-leases")``. One item per schedule
(``pk`` = its ARN). A fire is three steps, each a conditional write or a send:

1. take the due time: ``SET pending = due`` only if ``last_due < due`` and no other host
   holds a newer or unexpired ``pending`` (DynamoDB's conditional write decides the race:
   exactly one host wins each due time);
2. send the event to the shared SQS queue;
3. ``SET last_due = due``.

A host that dies between 1 and 3 leaves ``pending`` to expire after :data:`PENDING_LEASE`
seconds; its due time is then caught up by the next host that starts (``catch_up``). A
host dying between 2 and 3 means the event may be sent twice, which asynchronous
invocation allows (at least once).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from eventrouter.errors import ConfigError
from eventrouter.lease_table import ensure_table, host_owner, scan
from eventrouter.sources.schedule.ledger import FireRow, ScheduleState

if TYPE_CHECKING:
    from eventrouter.contract.spec import SourcePort
    from eventrouter.store.base import Store

log = structlog.get_logger("eventrouter.schedules")

#: Seconds a host holds a due time it took before others may consider it abandoned.
PENDING_LEASE = 60.0


def _n(value: float) -> dict[str, str]:
    return {"N": repr(float(value))}


def _state(item: dict[str, Any]) -> ScheduleState:
    def num(key: str) -> float | None:
        return float(item[key]["N"]) if key in item else None

    created = num("created")
    return ScheduleState(
        arn=item["pk"]["S"],
        expression=item.get("expression", {}).get("S", ""),
        created=created if created is not None else 0.0,
        last_due=num("last_due"),
        last_fired_at=num("last_fired_at"),
        last_outcome=item.get("last_outcome", {}).get("S"),
    )


class DynamoLedger:
    """:class:`~eventrouter.sources.schedule.ledger.Ledger` on a DynamoDB table."""

    def __init__(self, client: Any, table: str, store: Store) -> None:
        self.client = client
        self.table = table
        self.store = store
        self.owner = host_owner(self)

    @classmethod
    async def open(cls, runtime: SourcePort, table: str | None) -> DynamoLedger:
        queue = runtime.router.async_queue
        if table is None or queue is None:
            raise ConfigError(
                "schedules on a shared SQS queue need Router(lease_table='...'): the DynamoDB "
                "table through which the hosts fire each due time once"
            )
        client = await runtime.clients.aws("dynamodb", queue.region, queue.endpoint_url)
        ledger = cls(client, table, runtime.store)
        await ensure_table(client, table)
        return ledger

    async def _get(self, arn: str) -> dict[str, Any] | None:
        answer = await self.client.get_item(
            TableName=self.table, Key={"pk": {"S": arn}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = answer.get("Item")
        return item

    async def load_many(self, schedules: list[tuple[str, str]], now: float) -> list[ScheduleState]:
        return [await self._load(arn, expression, now) for arn, expression in schedules]

    async def _load(self, arn: str, expression: str, now: float) -> ScheduleState:
        item = await self._get(arn)
        if item is not None and item.get("expression", {}).get("S") == expression:
            return _state(item)
        # A host that created it first wins: its anchor is everyone's.
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            await self.client.put_item(
                TableName=self.table,
                Item={"pk": {"S": arn}, "expression": {"S": expression}, "created": _n(now)},
                ConditionExpression="attribute_not_exists(pk) OR #e <> :e",
                ExpressionAttributeNames={"#e": "expression"},
                ExpressionAttributeValues={":e": {"S": expression}},
            )
        item = await self._get(arn)
        assert item is not None
        return _state(item)

    async def fire_many(self, fires: list[FireRow]) -> list[bool]:
        """Each schedule's fires in order; different schedules concurrently."""
        by_arn: dict[str, list[int]] = {}
        for i, row in enumerate(fires):
            by_arn.setdefault(row[0], []).append(i)
        out = [False] * len(fires)

        async def one_schedule(indexes: list[int]) -> None:
            for i in indexes:
                out[i] = await self.fire(*fires[i])

        async with anyio.create_task_group() as tg:
            for indexes in by_arn.values():
                tg.start_soon(one_schedule, indexes)
        return out

    async def fire(self, arn: str, due: float, queue: str, request_id: str, payload: bytes) -> bool:
        now = time.time()
        try:
            await self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": arn}},
                UpdateExpression="SET pending = :d, pending_until = :u, #o = :me",
                ConditionExpression=(
                    "(attribute_not_exists(last_due) OR last_due < :d) AND "
                    "(attribute_not_exists(pending) OR pending < :d OR pending_until < :now "
                    "OR (pending = :d AND #o = :me))"
                ),
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={
                    ":d": _n(due),
                    ":u": _n(now + PENDING_LEASE),
                    ":now": _n(now),
                    ":me": {"S": self.owner},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False  # fired, or being fired, by another host
        await self.store.enqueue(queue, request_id, payload)
        await self._advance(arn, due, f"queued {request_id}")
        return True

    async def skip(self, arn: str, due: float, outcome: str) -> None:
        await self._advance(arn, due, outcome)

    async def _advance(self, arn: str, due: float, outcome: str) -> None:
        """``last_due = due``; and the pending due time released only if it is this host's
        ``due``. Another host may hold a later one meanwhile (it took it while this one was
        sending, or this one is skipping a missed due time): removing *its* ``pending`` let a
        third attempt take that due time again, a double fire seen under load."""
        values = {":d": _n(due), ":now": _n(time.time()), ":o": {"S": outcome}}
        newer = "attribute_not_exists(last_due) OR last_due < :d"
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            try:
                await self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": arn}},
                    UpdateExpression=(
                        "SET last_due = :d, last_fired_at = :now, last_outcome = :o "
                        "REMOVE pending, pending_until, #o"
                    ),
                    ConditionExpression=f"({newer}) AND pending = :d AND #o = :me",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={**values, ":me": {"S": self.owner}},
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                await self.client.update_item(  # another host's pending stays
                    TableName=self.table,
                    Key={"pk": {"S": arn}},
                    UpdateExpression="SET last_due = :d, last_fired_at = :now, last_outcome = :o",
                    ConditionExpression=newer,
                    ExpressionAttributeValues=values,
                )

    async def record_outcome(self, arn: str, request_id: str, condition: str) -> None:
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            await self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": arn}},
                UpdateExpression="SET last_outcome = :o",
                ConditionExpression="last_outcome = :q",
                ExpressionAttributeValues={
                    ":o": {"S": f"{condition} {request_id}"},
                    ":q": {"S": f"queued {request_id}"},
                },
            )

    async def states(self) -> list[ScheduleState]:
        # The table may hold shard leases too: a schedule's item has an expression.
        items = await scan(
            self.client,
            self.table,
            FilterExpression="attribute_exists(#x)",
            ExpressionAttributeNames={"#x": "expression"},  # a reserved word unquoted
        )
        return sorted((_state(i) for i in items), key=lambda s: s.arn)
