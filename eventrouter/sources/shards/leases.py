"""Shard leases and checkpoints on a DynamoDB table, for several hosts reading one stream,
the way AWS's Kinesis Client Library does it.

One item per (consumer, shard) in the router's lease table (:mod:`eventrouter.lease_table`),
``pk = "shard|<function>|<stream>|<shard>"``, with ``owner``, ``expires_at`` (epoch
seconds), ``checkpoint`` (the last record done), ``finished`` and ``window_state``.

- A host holds a shard while its lease is unexpired; it renews every lease it holds on each
  :meth:`DynamoCheckpoints.acquire` (the reader calls it every third of the lease).
- It takes shards nobody holds (no item, no owner, or an expired lease) with a conditional
  write, up to its share: the readable shards divided by the hosts holding live leases
  (itself included). Below its share with none free, it takes one shard from a host holding
  more than its share (a conditional write on that owner and expiry): hosts balance.
- A checkpoint is written only if the writer still owns the lease (``owner = :me``): a host
  that lost a shard cannot move its checkpoint; the reader then revokes the shard.
- A host that dies leaves its leases to expire; another takes them and resumes from the last
  checkpoint (records after it are read again: at least once).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import structlog

from eventrouter.lease_table import ensure_table, host_owner, scan
from eventrouter.sources.shards.checkpoints import Checkpoint

if TYPE_CHECKING:
    from eventrouter.services.clients import Clients

log = structlog.get_logger("eventrouter.stream")


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": repr(float(value))}


class DynamoCheckpoints:
    """:class:`~eventrouter.sources.shards.checkpoints.Checkpoints` with a lease per shard."""

    def __init__(
        self,
        clients: Clients,
        table: str,
        consumer: str,
        *,
        region: str | None,
        endpoint_url: str | None,
        lease_seconds: float,
    ) -> None:
        self.clients = clients
        self.table = table
        self.consumer = consumer
        self.region = region
        self.endpoint_url = endpoint_url
        self.lease_seconds = lease_seconds
        #: How often the reader calls :meth:`acquire` (renewing the leases held).
        self.renew_every = lease_seconds / 3
        self.owner = host_owner(self)
        self.held: set[str] = set()
        self._client: Any = None

    def _pk(self, shard: str) -> dict[str, dict[str, str]]:
        return {"pk": _s(f"shard|{self.consumer}|{shard}")}

    async def _connect(self) -> Any:
        if self._client is None:
            client = await self.clients.aws("dynamodb", self.region, self.endpoint_url)
            await ensure_table(client, self.table)
            self._client = client
        return self._client

    async def _scan(self) -> dict[str, dict[str, Any]]:
        client = await self._connect()
        prefix = f"shard|{self.consumer}|"
        items = await scan(
            client,
            self.table,
            FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": _s(prefix)},
        )
        return {item["pk"]["S"][len(prefix) :]: item for item in items}

    async def _update(self, shard: str, update: str, condition: str, **values: Any) -> bool:
        """A conditional UpdateItem; ``False`` when the condition failed."""
        client = await self._connect()
        try:
            await client.update_item(
                TableName=self.table,
                Key=self._pk(shard),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={f":{k}": v for k, v in values.items()},
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    async def acquire(self, shards: list[str]) -> set[str]:
        now = time.time()
        items = await self._scan()
        me, until = _s(self.owner), _n(now + self.lease_seconds)
        kept = set()
        for shard in self.held & set(shards):
            if await self._update(
                shard, "SET #o = :me, expires_at = :until", "#o = :me", me=me, until=until
            ):
                kept.add(shard)
        lost = self.held - kept
        self.held = kept

        def live_owner(shard: str) -> str | None:
            item = items.get(shard)
            if item is None or "owner" not in item or float(item["expires_at"]["N"]) < now:
                return None
            owner: str = item["owner"]["S"]
            return owner

        owners: dict[str, list[str]] = {}
        for shard in shards:
            owner = live_owner(shard)
            if owner is not None and owner != self.owner:
                owners.setdefault(owner, []).append(shard)
        share = math.ceil(len(shards) / (len(owners) + 1)) if shards else 0
        free = [s for s in shards if s not in self.held and live_owner(s) is None]
        for shard in free:
            if len(self.held) >= share:
                break
            if await self._update(
                shard,
                "SET #o = :me, expires_at = :until",
                "attribute_not_exists(#o) OR expires_at < :now",
                me=me,
                until=until,
                now=_n(now),
            ):
                self.held.add(shard)
        if len(self.held) < share:
            # Take one shard from the host holding the most, if that is more than its share.
            owner, theirs = max(owners.items(), key=lambda kv: len(kv[1]), default=(None, []))
            if owner is not None and len(theirs) > share:
                shard = sorted(theirs)[-1]
                if await self._update(
                    shard,
                    "SET #o = :me, expires_at = :until",
                    "#o = :them AND expires_at = :seen",
                    me=me,
                    until=until,
                    them=_s(owner),
                    seen=items[shard]["expires_at"],
                ):
                    log.info("shard lease taken over", shard=shard, previous_owner=owner)
                    self.held.add(shard)
        if lost:
            log.info("shard leases lost", shards=sorted(lost))
        return set(self.held)

    async def load(self, shard: str) -> Checkpoint:
        client = await self._connect()
        item = (
            await client.get_item(TableName=self.table, Key=self._pk(shard), ConsistentRead=True)
        ).get("Item")
        if item is None:
            return Checkpoint()
        return Checkpoint(
            item.get("checkpoint", {}).get("S"),
            bool(item.get("finished", {}).get("BOOL")),
            item.get("window_state", {}).get("B"),
        )

    async def finished(self, shards: Iterable[str]) -> set[str]:
        items = await self._scan()
        return {s for s in shards if items.get(s, {}).get("finished", {}).get("BOOL")}

    async def save(self, rows: dict[str, tuple[str | None, bytes | None]]) -> set[str]:
        refused = set()
        for shard, (sequence, window) in rows.items():
            sets: list[str] = []
            values: dict[str, Any] = {"me": _s(self.owner)}
            if sequence is not None:
                sets.append("checkpoint = :seq")
                values["seq"] = _s(sequence)
            update = "SET " + ", ".join(sets) if sets else ""
            if window is not None:
                values["w"] = {"B": window}
                update = (update + ", " if update else "SET ") + "window_state = :w"
            else:
                update += " REMOVE window_state"
            if not await self._update(shard, update.strip(), "#o = :me", **values):
                refused.add(shard)
                self.held.discard(shard)
        return refused

    async def finish(self, shard: str) -> None:
        await self._update(
            shard,
            "SET finished = :t REMOVE #o, window_state",
            "#o = :me",
            t={"BOOL": True},
            me=_s(self.owner),
        )
        self.held.discard(shard)

    async def release(self, shards: Iterable[str]) -> None:
        for shard in set(shards) & self.held:
            await self._update(shard, "REMOVE #o, expires_at", "#o = :me", me=_s(self.owner))
        self.held -= set(shards)
