"""Starting a router's schedules: one scheduler for all of them, its fires recorded in a
ledger beside the embedded store's events or, for hosts sharing an SQS queue, in the
router's DynamoDB lease table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eventrouter.sources.schedule.ledger import Ledger, SqliteLedger
from eventrouter.sources.schedule.scheduler import Scheduler
from eventrouter.store.sqlite import EventStore

if TYPE_CHECKING:
    import anyio.abc

    from eventrouter.contract.spec import FunctionSpec, Running, SourcePort


async def schedule_ledger(services: SourcePort) -> Ledger:
    """Where fires are recorded: beside the events of the embedded queue, or, for hosts
    sharing an SQS queue, in the router's DynamoDB lease table."""
    if isinstance(services.store, EventStore):
        return SqliteLedger(services.store)
    from eventrouter.sources.schedule.dynamo import DynamoLedger

    ledger: Ledger = await DynamoLedger.open(services, services.router.lease_table)
    return ledger


class ScheduleStarter:
    """Starts one scheduler for every schedule of a router."""

    async def start(
        self, specs: Sequence[FunctionSpec], port: SourcePort, task_group: anyio.abc.TaskGroup
    ) -> dict[str, Running]:
        scheduler = Scheduler(port, await schedule_ledger(port), list(specs))
        port.on_final(scheduler.on_final)
        await task_group.start(scheduler.run)
        return dict.fromkeys((spec.name for spec in specs), scheduler)


#: The one starter of schedules.
SCHEDULES = ScheduleStarter()
