"""``Queue``: a named queue in the embedded durable store, as the source of a function."""

from __future__ import annotations

import re

import msgspec

from eventrouter.config import check_int
from eventrouter.errors import ConfigError

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,80}")


def check_queue_name(name: object) -> str:
    """Queue names follow SQS's rule: 1-80 of ``A-Z a-z 0-9 _ - .``."""
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise ConfigError(
            f"queue name {name!r} is not valid: use 1 to 80 letters, digits, '_', '-' or '.'"
        )
    return name


class Queue(msgspec.Struct, frozen=True):
    """Consume the named embedded queue ``name``.

    With ``batch_size=1`` (the default) each message is one invocation; with more, the handler
    receives a list of up to ``batch_size`` messages and may answer with a partial batch
    response ``{"batchItemFailures": [{"itemIdentifier": "<message id>"}]}``. Retries,
    ``max_event_age`` and destinations follow the function's settings, as for asynchronous
    invocation::

        @router.on_event(Queue("emails"), max_retries=1)
        async def send_email(email: Email) -> None: ...
    """

    name: str
    batch_size: int = 1

    def __post_init__(self) -> None:
        check_queue_name(self.name)
        check_int("batch_size", self.batch_size, 1, 10_000)

    def describe(self) -> str:
        return f"queue:{self.name}" + (f" batch={self.batch_size}" if self.batch_size > 1 else "")
