"""Shard leases on DynamoDB (moto): one owner per shard, taken over once expired, balanced,
and a checkpoint that only the lease's owner can write."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from eventrouter.services.clients import Clients
from eventrouter.sources.shards.leases import DynamoCheckpoints
from tests.kafka_broker import unique

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def expire(moto: str, table: str, consumer: str, shard: str) -> None:
    """The lease's owner died long ago: its expiry is in the past."""
    boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1").update_item(
        TableName=table,
        Key={"pk": {"S": f"shard|{consumer}|{shard}"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": repr(time.time() - 60)}},
    )


async def test_a_lost_lease_cannot_move_the_checkpoint(moto: str) -> None:
    table, consumer = unique("leases"), "count|clicks"
    clients = Clients()
    try:

        def host() -> DynamoCheckpoints:
            return DynamoCheckpoints(
                clients, table, consumer, region="us-east-1", endpoint_url=moto, lease_seconds=30
            )

        a, b = host(), host()
        assert await a.acquire(["s1"]) == {"s1"}
        assert await b.acquire(["s1"]) == set()  # held, and a holds no more than its share
        assert await a.save({"s1": ("5", None)}) == set()
        expire(moto, table, consumer, "s1")
        assert await b.acquire(["s1"]) == {"s1"}
        assert (await b.load("s1")).sequence == "5"  # resumes after a's checkpoint
        assert await a.save({"s1": ("9", None)}) == {"s1"}  # refused: a lost the lease
        assert await b.save({"s1": ("7", b"[0, {}]")}) == set()
        loaded = await a.load("s1")
        assert (loaded.sequence, loaded.window) == ("7", b"[0, {}]")
        assert await a.acquire(["s1"]) == set()
        await b.finish("s1")
        assert await a.finished(["s1", "s2"]) == {"s1"}
    finally:
        await clients.close()


async def test_hosts_balance_and_release_on_stop(moto: str) -> None:
    table, consumer = unique("leases"), "count|clicks"
    clients = Clients()
    shards = [f"s{i}" for i in range(4)]
    try:

        def host() -> Any:
            return DynamoCheckpoints(
                clients, table, consumer, region="us-east-1", endpoint_url=moto, lease_seconds=30
            )

        a, b = host(), host()
        assert await a.acquire(shards) == set(shards)  # alone: every shard
        taken: set[str] = set()
        for _ in range(4):  # one shard from the busiest host per round, up to its share
            taken = await b.acquire(shards)
        assert len(taken) == 2
        assert await a.acquire(shards) == set(shards) - taken  # a learns what it lost
        await b.release(taken)
        assert await a.acquire(shards) == set(shards)  # released: free to take at once
    finally:
        await clients.close()
