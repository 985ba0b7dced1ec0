"""Lambda's own example of a recursive loop, on moto: a function that sends to the SQS queue
it reads. The lineage travels as a message attribute; the 17th invocation is stopped, its
message left to the queue's redrive policy (here: into the dead-letter queue)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eventrouter import Context, Router, to_sqs
from eventrouter.lineage import LIMIT
from eventrouter.testing import run_router
from tests.integration.test_sqs import Order, eventually, make_queue, send, source, sqs_client

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_a_function_writing_to_the_queue_it_reads_is_stopped(moto: str) -> None:
    name, url, dlq = make_queue(moto, visibility=1, dlq_after=1)
    assert dlq is not None
    seen: list[int] = []
    router = Router("sqs-loop")

    @router.on_event(source(moto, name, batch_size=1), timeout=1)
    async def echo(order: Order, ctx: Context) -> None:
        seen.append(order.n)
        await ctx.send(to_sqs(url, endpoint_url=moto, region="us-east-1"), {"n": order.n + 1})

    async with run_router(router) as app:
        send(moto, url, [{"n": 1}])

        def in_dlq() -> list[Any]:
            got = sqs_client(moto).receive_message(
                QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=1
            )
            return got.get("Messages", [])

        found: list[Any] = []

        def stopped() -> bool:
            found.extend(in_dlq())
            return bool(found)

        await eventually(stopped, within=60)
        dropped = app.engine.metrics.get("RecursiveInvocationsDropped", "echo")
    # An outside message starts at depth 1: invocations 1..16 ran, the 17th was stopped.
    assert seen == list(range(1, LIMIT + 1))
    (message,) = found
    assert json.loads(message["Body"]) == {"n": LIMIT + 1}
    assert message["MessageAttributes"]["eventrouter-lineage"]["StringValue"] == str(LIMIT)
    assert dropped >= 1
