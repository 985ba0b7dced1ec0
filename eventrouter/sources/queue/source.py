"""``Queue``: a named queue in the embedded durable store, as the source of a function."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from eventrouter.arns import queue_arn
from eventrouter.config import check_int
from eventrouter.contract.spec import Model, SourceBase, messaging
from eventrouter.errors import ConfigError
from eventrouter.keywords import CheckedStructMeta

#: The service principal embedded queues invoke their functions as.
QUEUE_SERVICE = "queue.eventrouter.local"

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,80}")


def check_queue_name(name: object) -> str:
    """Queue names follow SQS's rule: 1-80 of ``A-Z a-z 0-9 _ - .``."""
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise ConfigError(
            f"queue name {name!r} is not valid: use 1 to 80 letters, digits, '_', '-' or '.'"
        )
    return name


class Queue(SourceBase, frozen=True, metaclass=CheckedStructMeta):
    """Consume the named embedded queue ``name``.

    With ``batch_size=1`` (the default) each message is one invocation; with more, the handler
    receives a list of up to ``batch_size`` messages and may answer with a partial batch
    response ``{"batchItemFailures": [{"itemIdentifier": "<message id>"}]}``. Retries,
    ``max_event_age`` and destinations follow the function's settings, as for asynchronous
    invocation::

        @router.on_event(Queue("emails"), max_retries=1)
        async def send_email(email: Email) -> None: ...
    """

    model: ClassVar[Model] = "async"
    principal: ClassVar[str | None] = QUEUE_SERVICE

    name: str
    batch_size: int = 1

    def __post_init__(self) -> None:
        check_queue_name(self.name)
        check_int("batch_size", self.batch_size, 1, 10_000)

    @property
    def named_queue(self) -> str:
        """The embedded queue consumed besides the function's own (asynchronous policy)."""
        return self.name

    def source_arns(self) -> list[str]:
        return [queue_arn(self.name)]

    def adapter(self, spec: Any, runtime: Any) -> None:
        return None  # consumed by the asynchronous policy with the function's own queue

    def trace_attributes(self) -> dict[str, Any]:
        return messaging("eventrouter", self.name)

    def describe(self) -> str:
        return f"queue:{self.name}" + (f" batch={self.batch_size}" if self.batch_size > 1 else "")
