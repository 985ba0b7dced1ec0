"""The router's DynamoDB lease table (``Router(lease_table=...)`` or a stream's
``lease_table=``), shared by the schedules' ledger (one item per schedule) and the shard
leases of streams (one item per function, stream and shard): key ``pk``, on demand."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

import structlog

log = structlog.get_logger("eventrouter")


def host_owner(obj: object) -> str:
    """This process's name in a lease's ``owner``: host, pid and the object."""
    return f"{socket.gethostname()}:{os.getpid()}:{id(obj):x}"


async def ensure_table(client: Any, table: str) -> None:
    """Create the table unless it exists; wait until it is active."""
    with contextlib.suppress(client.exceptions.ResourceInUseException):
        await client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        log.info("lease table created", table=table)
    waiter = client.get_waiter("table_exists")
    await waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


async def scan(client: Any, table: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of the table that ``kwargs`` (a filter) lets through, all pages."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True, **kwargs}
    while True:
        page = await client.scan(**request)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
