"""Recursive loop detection: how deep in a chain of invocations an event is.

Every invocation runs at a depth: one more than the invocation that made its event (an event
from outside, e.g. an HTTP request or a message a producer wrote, starts at depth 1). What an
invocation makes carries its depth as the new event's *lineage*: events of the durable queue
(asynchronous invocations, embedded queues, destinations, event-bus targets) keep it in the
store, ``ctx.invoke`` passes it in the context, SQS messages as the message attribute
``eventrouter-lineage`` and Kafka records as a header of that name. The invoker refuses an
invocation deeper than :data:`LIMIT` (Lambda stops loops after about 16 invocations) unless
the function allows recursion (``recursive_loop="Allow"``, or ``PutFunctionRecursionConfig``):
``RecursiveInvocationException``, counted as ``RecursiveInvocationsDropped``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

#: Invocations deeper than this are stopped.
LIMIT = 16
#: The name of the SQS message attribute and the Kafka header that carry a lineage.
CARRIER = "eventrouter-lineage"

#: The depth of the invocation running in this context (0: none).
DEPTH: ContextVar[int] = ContextVar("eventrouter_depth", default=0)


def produced() -> int:
    """The lineage of an event made now: the depth of the invocation making it."""
    return DEPTH.get()


def from_headers(headers: Iterable[tuple[str, bytes]] | None) -> int:
    """A Kafka record's lineage (0 without the header)."""
    for key, value in headers or ():
        if key == CARRIER:
            return _int(value)
    return 0


def from_sqs(attributes: Mapping[str, Any] | None) -> int:
    """An SQS message's lineage, from its ``MessageAttributes`` (0 without it)."""
    attribute = (attributes or {}).get(CARRIER)
    return _int(attribute.get("StringValue")) if isinstance(attribute, Mapping) else 0


def sqs_attribute(lineage: int) -> dict[str, dict[str, str]]:
    return {CARRIER: {"DataType": "Number", "StringValue": str(lineage)}}


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
