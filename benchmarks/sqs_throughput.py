"""SQS on moto's server: a hand-written aiobotocore receive/delete loop vs eventrouter.

Both use batches of 10 and the same number of concurrent pollers (5), against the same
moto server in the same run, with at most 400 messages in the queue (moto slows down as a
queue grows). moto bounds the wall-clock rate, so the figure that shows eventrouter's own
overhead is the CPU time of this process per message. A second run starts eventrouter with
one poller on a backlog and records how many pollers it runs over time (a PNG plot).
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import boto3  # type: ignore[import-untyped]

from benchmarks.common import progress, summarize
from eventrouter import Router, Sqs
from eventrouter.observability.logging import configure_logging
from eventrouter.testing import run_router
from tests.aws_server import start_moto
from tests.kafka_broker import unique

POLLERS = 5
TARGETS = {"rate_vs_loop": 0.9, "cpu_per_message_vs_loop": 1.2}


def fill(endpoint: str, count: int) -> tuple[str, str]:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    name = unique("bench")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    body = json.dumps({"order_id": "o-1", "amount": 12.5, "pad": "x" * 40})
    for i in range(0, count, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(k), "MessageBody": body} for k in range(min(10, count - i))],
        )
    return name, url


async def hand_written(endpoint: str, url: str, total: int) -> tuple[float, float]:
    from aiobotocore.session import get_session  # type: ignore[import-untyped]

    done = 0
    # Timed from before the client exists, as eventrouter's run is from before it starts.
    start, cpu = time.perf_counter(), time.process_time()
    session = get_session()
    async with session.create_client("sqs", endpoint_url=endpoint, region_name="us-east-1") as sqs:

        async def loop() -> None:
            nonlocal done
            while done < total:
                got = (
                    await sqs.receive_message(
                        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                    )
                ).get("Messages", [])
                if not got:
                    continue
                for m in got:
                    json.loads(m["Body"])
                await sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]}
                        for k, m in enumerate(got)
                    ],
                )
                done += len(got)

        async with anyio.create_task_group() as tg:
            for _ in range(POLLERS):
                tg.start_soon(loop)
        return total / (time.perf_counter() - start), (time.process_time() - cpu) / total


async def routed(
    endpoint: str, name: str, total: int, linger: float = 0.0, **scaling: Any
) -> tuple[float, float, list[tuple[float, int]]]:
    done = 0
    finished = anyio.Event()
    router = Router("bench-sqs")
    options = {"min_pollers": POLLERS, "max_concurrency": POLLERS, **scaling}

    @router.on_event(
        Sqs(
            name,
            endpoint_url=endpoint,
            region="us-east-1",
            batch_size=10,
            wait_time_seconds=0,
            **options,
        ),
        timeout=10,
    )
    async def noop(batch: list[dict[str, Any]]) -> None:
        nonlocal done
        done += len(batch)
        if done >= total:
            finished.set()

    start, cpu = time.perf_counter(), time.process_time()
    async with run_router(router) as app:
        policy: Any = app.engine.streams[0]
        await finished.wait()
        rate = total / (time.perf_counter() - start)
        per_message = (time.process_time() - cpu) / total
        await anyio.sleep(linger)  # let the plot show the pollers shrink once it is empty
        history = [(t - policy.history[0][0], n) for t, n in policy.history]
        history.append((time.monotonic() - policy.history[0][0], policy.target))
    return rate, per_message, history


def run(quick: bool = False) -> dict[str, Any]:
    total = 40 if quick else 400
    rounds = 1 if quick else 2
    loop_rates, loop_cpu, our_rates, our_cpu = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.jsonl", "w") as log:
        configure_logging("json", "info", stream=log)
        with start_moto(Path(tmp) / "moto.log") as (endpoint, _, _):
            for r in range(rounds):
                progress(f"SQS round {r + 1}/{rounds}: {total} messages, loop then eventrouter")
                _, url = fill(endpoint, total)
                rate, cpu = anyio.run(hand_written, endpoint, url, total)
                loop_rates.append(rate)
                loop_cpu.append(cpu)
                name, _ = fill(endpoint, total)
                rate, cpu, _ = anyio.run(routed, endpoint, name, total)
                our_rates.append(rate)
                our_cpu.append(cpu)
            progress("SQS: pollers scaling while a backlog drains")
            name, _ = fill(endpoint, total)
            scaling = functools.partial(
                routed,
                linger=4.0,
                min_pollers=1,
                max_concurrency=20,
                scale_tick=0.5,
                scale_up_per_minute=240,
            )
            _, _, history = anyio.run(scaling, endpoint, name, total)
    result: dict[str, Any] = {
        "messages": total,
        "pollers": POLLERS,
        "loop_messages_per_s": summarize(loop_rates),
        "eventrouter_messages_per_s": summarize(our_rates),
        "loop_cpu_us_per_message": summarize([c * 1e6 for c in loop_cpu]),
        "eventrouter_cpu_us_per_message": summarize([c * 1e6 for c in our_cpu]),
        "poller_history": history,
        "targets": TARGETS,
    }
    result["rate_vs_loop"] = (
        result["eventrouter_messages_per_s"]["median"] / result["loop_messages_per_s"]["median"]
    )
    result["cpu_per_message_vs_loop"] = (
        result["eventrouter_cpu_us_per_message"]["median"]
        / result["loop_cpu_us_per_message"]["median"]
    )
    return result
