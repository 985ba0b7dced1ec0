"""A batch of records becomes one invocation: the one path polled queues and streams share.

The event is Lambda's (the raw handler form) or the decoded values (with each record's
metadata in ``ctx.records``); the invocation carries the records' traces as span links and
the depth of the deepest invocation that wrote them. A partial batch response names the
failed records in the transport's terms (:meth:`RecordShapes.item_identifier`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventrouter.events import LazyList, new_request_id
from eventrouter.observability import tracing
from eventrouter.outcomes import Outcome, failed_items

if TYPE_CHECKING:
    from eventrouter.contract.adapters import RecordShapes
    from eventrouter.runtime.invoker import FunctionState, Invoker


def batch_event(
    shapes: RecordShapes, raw_form: bool, raws: list[Any], values: list[Any] | None
) -> tuple[Any, LazyList[Any]]:
    """The event of a batch and its records' metadata (``ctx.records``, built when read)."""
    records = LazyList(len(raws), lambda k: shapes.record(raws[k], values[k] if values else None))
    return (shapes.lambda_event(raws) if raw_form else values), records


async def invoke_batch(
    invoker: Invoker,
    state: FunctionState,
    shapes: RecordShapes,
    raws: list[Any],
    event: Any,
    records: Any,
    attempt: int,
    *,
    per_record: bool = False,
    request_id: str | None = None,
) -> Outcome:
    """Invoke once with a batch's ``event``, linked to its records' traces."""
    links = [shapes.trace_of(raw) for raw in raws] if tracing.TRACER is not None else None
    return await invoker.invoke_value(
        state,
        event,
        request_id or new_request_id(),
        attempt,
        records=records,
        per_record=per_record,
        links=links,
        lineage=shapes.lineage_of(raws),
    )


def failed_indices(shapes: RecordShapes, outcome: Outcome, raws: list[Any]) -> list[int]:
    """The records a successful invocation's partial batch response lists as failed."""
    return failed_items(
        outcome.response, [shapes.item_identifier(raw) for raw in raws], shapes.identifier_key
    )
