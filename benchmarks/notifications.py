"""SNS notifications into eventrouter.

(a) SNS -> SQS -> router on moto's server: one topic with two SQS queues subscribed, so
both get the same SNS envelopes; the ``Sns`` source (its feed unwraps each envelope and
writes an asynchronous invocation) against the ``Sqs`` source alone on the other queue
(Lambda's SQS event, batches of 10), two pollers each with 1 s long polls, rounds
interleaved. moto bounds the
wall-clock rate, so the figure is this process's CPU per message (goal: the unwrapping costs
at most 10 % more).

(b) The HTTP subscription endpoint (every message's signature checked, SignatureVersion 2,
2048-bit key, each message unique) against the Invoke API's ``Event`` path of the same
router, with wrk (16 connections), rounds interleaved.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

import anyio
import boto3  # type: ignore[import-untyped]

from benchmarks.common import WRK_DONE, progress, router_process, run_wrk, summarize
from eventrouter import Router, Sns, Sqs
from eventrouter.observability.logging import configure_logging
from eventrouter.sources.sns.source import sqs_feed
from eventrouter.testing import run_router
from tests.aws_server import start_moto
from tests.kafka_broker import unique
from tests.services import free_port
from tests.sns_signing import Signer, notification, sns_host

TOPIC = "arn:aws:sns:us-east-1:123456789012:bench"
TARGETS = {"unwrap_vs_sqs_cpu": 0.1}

# -- (a) through SQS ---------------------------------------------------------------------------


def fill(endpoint: str, count: int) -> tuple[str, str, str]:
    """A topic with two subscribed queues, ``count`` messages published: the queues' names."""
    sns = boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    topic = sns.create_topic(Name=unique("bench"))["TopicArn"]
    names = []
    for _ in range(2):
        name = unique("bench-q")
        url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
        names.append(name)
    body = json.dumps({"order_id": "o-1", "amount": 12.5, "pad": "x" * 40})
    for _ in range(count):
        sns.publish(TopicArn=topic, Message=body)
    return topic, names[0], names[1]


async def consume(endpoint: str, topic: str, queue: str, total: int, kind: str) -> float:
    """CPU seconds of this process per message, from the router's start to the last one."""
    done = 0
    finished = anyio.Event()
    router = Router(f"bench-{kind}")

    def count(n: int) -> None:
        nonlocal done
        done += n
        if done >= total:
            finished.set()

    if kind == "sns":

        @router.on_event(Sns(topic, queue=queue, endpoint_url=endpoint, wait_time_seconds=1))
        async def notified(event: dict[str, Any]) -> None:
            count(len(event["Records"]))
    else:

        @router.on_event(
            Sqs(
                queue,
                endpoint_url=endpoint,
                region="us-east-1",
                batch_size=10,
                wait_time_seconds=1,
                min_pollers=2,
                max_concurrency=2,
            ),
            timeout=10,
        )
        async def polled(event: dict[str, Any]) -> None:
            count(len(event["Records"]))

    cpu = time.process_time()
    async with run_router(router):
        await finished.wait()
        return (time.process_time() - cpu) / total


def unwrap_cost() -> float:
    """µs to turn one SQS message from a subscription into Lambda's SNS event (the feed's
    conversion alone: envelope parse, filter policy, event, encoding)."""
    source = Sns(TOPIC, queue="q", filter_policy={"store": ["example_corp"]})
    body = json.dumps(
        {
            **notification(TOPIC, json.dumps({"order_id": "o-1", "amount": 12.5})),
            "SignatureVersion": "1",
            "Signature": "x" * 344,
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
            "MessageAttributes": {"store": {"Type": "String", "Value": "example_corp"}},
        }
    )
    convert = sqs_feed(source, FakeSpec("f"), FakeRuntime()).convert  # type: ignore[arg-type]
    assert len(convert(body)) == 1
    n = 20_000
    return min(timeit.repeat(lambda: convert(body), number=n, repeat=3)) / n * 1e6


class FakeSpec:
    def __init__(self, name: str) -> None:
        self.name = name


class FakeRuntime:
    """Enough of a runtime to build a feed whose conversion is timed (nothing runs)."""

    def __init__(self) -> None:
        from eventrouter.services.clients import Clients

        self.clients = Clients()
        self.router = Router("bench")


def through_sqs(quick: bool) -> dict[str, Any]:
    total = 30 if quick else 300
    rounds = 1 if quick else 2
    cpu: dict[str, list[float]] = {"sns": [], "sqs": []}
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.jsonl", "w") as log:
        configure_logging("json", "info", stream=log)
        with start_moto(Path(tmp) / "moto.log") as (endpoint, _, _):
            progress("SNS through SQS: warm-up (imports, clients), not measured")
            topic, first, second = fill(endpoint, 20)
            for kind, queue in (("sns", first), ("sqs", second)):
                anyio.run(consume, endpoint, topic, queue, 20, kind)
            for r in range(rounds):
                progress(f"SNS through SQS round {r + 1}/{rounds}: {total} messages")
                topic, first, second = fill(endpoint, total)
                order = ("sns", "sqs") if r % 2 == 0 else ("sqs", "sns")
                for kind in order:
                    queue = first if kind == "sns" else second
                    cpu[kind].append(anyio.run(consume, endpoint, topic, queue, total, kind))
    out: dict[str, Any] = {
        "messages": total,
        "unwrap_us_per_message": unwrap_cost(),
        "sns_cpu_us_per_message": summarize([c * 1e6 for c in cpu["sns"]]),
        "sqs_cpu_us_per_message": summarize([c * 1e6 for c in cpu["sqs"]]),
    }
    out["cpu_per_message_vs_sqs"] = (
        out["sns_cpu_us_per_message"]["median"] / out["sqs_cpu_us_per_message"]["median"]
    )
    return out


# -- (b) the HTTP subscription endpoint -----------------------------------------------------------

WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
local path = "%(path)s"
local headers = {}
%(headers)s
request = function()
  i = i + 1
  if path ~= "" then return wrk.format("POST", path, headers, bodies[i]) end
  return wrk.format("POST", nil, headers, bodies[1])
end
"""


def _wrk(url: str, path: str, bodies: Path, headers: dict[str, str], seconds: int) -> float:
    script = bodies.with_suffix(".lua")
    lines = "\n".join(f'headers["{k}"] = "{v}"' for k, v in headers.items())
    script.write_text(WRK_SCRIPT % {"bodies": bodies, "path": path, "headers": lines} + WRK_DONE)
    try:
        requests, duration = run_wrk(script, url + path, seconds)
    except RuntimeError as exc:
        log = (bodies.parent / "router.log").read_text()[-1500:]
        raise RuntimeError(f"{exc} (more signed messages needed?)\n{log}") from None
    return requests / duration


def over_http(quick: bool) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (make bench installs it)"}
    rounds, seconds, per_round = (1, 1, 12_000) if quick else (3, 2, 24_000)
    signer = Signer()
    rps: dict[str, list[float]] = {"sns": [], "invoke": []}
    with tempfile.TemporaryDirectory() as tmp, sns_host(signer) as (cert_host, _):
        folder = Path(tmp)
        progress(f"SNS over HTTP: signing {rounds * per_round:,} messages")
        batches = []
        for r in range(rounds):
            path = folder / f"sns-{r}.txt"
            path.write_text(
                "\n".join(
                    json.dumps(signer.sign(notification(TOPIC, '{"n": 1}')))
                    for _ in range(per_round)
                )
            )
            batches.append(path)
        invoke_body = folder / "invoke.txt"
        invoke_body.write_text('{"n": 1}')
        target = "benchmarks.apps.sns_noop:router"
        env = {"SNS_CERT_ENDPOINT": cert_host}
        with router_process(target, folder, free_port(), env) as url:
            for r in range(rounds):
                kinds = ("sns", "invoke") if r % 2 == 0 else ("invoke", "sns")
                for kind in kinds:
                    progress(f"SNS over HTTP round {r + 1}/{rounds}: {kind}")
                    if kind == "sns":
                        headers = {"x-amz-sns-message-type": "Notification"}
                        rps[kind].append(_wrk(url, "/sns/notified", batches[r], headers, seconds))
                    else:
                        headers = {"X-Amz-Invocation-Type": "Event"}
                        invoke = "/2015-03-31/functions/noop/invocations"
                        rps[kind].append(_wrk(url + invoke, "", invoke_body, headers, seconds))
    out: dict[str, Any] = {
        "sns_rps": summarize(rps["sns"]),
        "invoke_event_rps": summarize(rps["invoke"]),
    }
    out["sns_vs_invoke"] = out["sns_rps"]["median"] / out["invoke_event_rps"]["median"]
    return out


def run(quick: bool = False) -> dict[str, Any]:
    return {"through_sqs": through_sqs(quick), "over_http": over_http(quick), "targets": TARGETS}
