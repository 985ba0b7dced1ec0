"""``to_queue``: the record goes into a named queue of the embedded store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from eventrouter.arns import queue_arn
from eventrouter.events import new_request_id
from eventrouter.keywords import checked
from eventrouter.sources.queue.source import check_queue_name

if TYPE_CHECKING:
    from eventrouter.contract.spec import Services


class ToQueue(msgspec.Struct, frozen=True):
    name: str

    def __post_init__(self) -> None:
        check_queue_name(self.name)

    def describe(self) -> str:
        return f"queue:{self.name}"

    def permission(self, key: str) -> tuple[str, str]:
        return "eventrouter:SendMessage", queue_arn(self.name)

    def check(self, runtime: Services) -> None:
        pass

    async def send(self, runtime: Services, record: bytes, key: str) -> None:
        await runtime.store.enqueue(self.name, new_request_id(), record)


@checked
def to_queue(name: str) -> ToQueue:
    """Send the invocation record to the embedded queue ``name`` (a ``Queue`` source reads it)."""
    return ToQueue(name)
