"""EventBridge's PutEvents through boto3 against the router's port; kill -9 after it answered;
replay from the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from eventrouter import EventBus, EventRule, Router
from eventrouter.arns import rule_arn
from eventrouter.testing import TestRouter
from tests.apps.secure import (
    BILLING_KEY,
    BILLING_SECRET,
    OTHER_KEY,
    OTHER_SECRET,
    write_credentials,
)
from tests.processes import RouterProcess, wait_until
from tests.services import aws_client

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def events_client(url: str, key: str = "test", secret: str = "test") -> Any:
    return aws_client("events", url, key, secret)


def entry(**kw: Any) -> dict[str, Any]:
    return {
        "Source": "shop",
        "DetailType": "order.placed",
        "Detail": json.dumps({"order": 1}),
        "EventBusName": "orders",
        **kw,
    }


def test_put_events_through_boto3() -> None:
    router = Router("t", buses=[EventBus("orders")])
    seen: list[Any] = []

    @router.on_event(EventRule(bus="orders", pattern={"source": ["shop"]}))
    def listen(event: dict[str, Any]) -> None:
        seen.append(event)

    with TestRouter(router, http="127.0.0.1:0") as app:
        events = events_client(app.url)
        answer = events.put_events(
            Entries=[
                entry(),
                entry(Detail="not json"),
                entry(
                    EventBusName="arn:aws:events:us-east-1:000000000000:event-bus/orders",
                    Resources=["arn:x"],
                ),
            ]
        )
        assert answer["FailedEntryCount"] == 1
        ok, bad, by_arn = answer["Entries"]
        assert set(ok) == {"EventId"} and set(by_arn) == {"EventId"}
        assert bad == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
        app.drain()
        ids = sorted(e["id"] for e in seen)
        assert ids == sorted([ok["EventId"], by_arn["EventId"]])
        assert [e["resources"] for e in seen if e["id"] == by_arn["EventId"]] == [["arn:x"]]
        with pytest.raises(ClientError) as info:
            events.put_events(Entries=[entry()] * 11)
        assert info.value.response["Error"]["Code"] == "ValidationException"
        with pytest.raises(ClientError) as info:
            events.put_events(Entries=[entry(Detail=json.dumps({"x": "y" * 300_000}))])
        assert "over the limit" in info.value.response["Error"]["Message"]
        with pytest.raises(ParamValidationError):  # boto3's own check, before any request
            events.put_events(Entries=[])
        with pytest.raises(ClientError) as info:
            events.list_rules()
        assert info.value.response["Error"]["Code"] == "UnknownOperationException"


def test_put_events_signed_and_authorized_when_enforced(tmp_path: Path) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::000000000000:user/billing"},
                "Action": "events:PutEvents",
                "Resource": "arn:aws:events:us-east-1:000000000000:event-bus/orders",
            }
        ],
    }
    router = Router(
        "t",
        enforce_permissions=True,
        credentials=str(write_credentials(tmp_path)),
        buses=[EventBus("orders", policy=policy)],
    )

    @router.on_event(EventRule(bus="orders", pattern={"source": ["shop"]}))
    def listen(event: dict[str, Any]) -> None: ...

    router.add_permission(
        "listen",
        principal="events.amazonaws.com",
        source_arn=rule_arn("orders", "listen"),
    )
    with TestRouter(router, http="127.0.0.1:0") as app:
        allowed = events_client(app.url, BILLING_KEY, BILLING_SECRET).put_events(Entries=[entry()])
        assert allowed["FailedEntryCount"] == 0
        for key, secret, code in (
            (OTHER_KEY, OTHER_SECRET, "AccessDeniedException"),
            (BILLING_KEY, "wrong-secret", "InvalidSignatureException"),
        ):
            with pytest.raises(ClientError) as info:
                events_client(app.url, key, secret).put_events(Entries=[entry()])
            assert info.value.response["Error"]["Code"] == code
        with pytest.raises(ClientError) as info:  # the default bus has no policy: refused
            events_client(app.url, BILLING_KEY, BILLING_SECRET).put_events(
                Entries=[entry(EventBusName="default")]
            )
        assert info.value.response["Error"]["Code"] == "AccessDeniedException"


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_events_survive_kill_9_after_put_events_answered_and_replay(tmp_path: Path) -> None:
    state, out = tmp_path / "state", tmp_path / "bus.log"
    env = {"BUS_OUT": str(out)}
    target = "tests.apps.bus:router"
    # The first router's handlers wait on a gate that never opens: killed after its 300 events
    # were acknowledged, it has run none of their 900 invocations, however fast it is.
    gated = {**env, "BUS_GATE": str(tmp_path / "never")}
    first = RouterProcess(state, tmp_path, "--http", "127.0.0.1:0", target=target, env=gated)
    first.wait_for(lambda rs: any(r.get("event") == "http listening" for r in rs))
    url = next(r["url"] for r in first.records if r.get("event") == "http listening")
    events = events_client(url)
    acknowledged = []
    for n in range(30):
        answer = events.put_events(
            Entries=[
                entry(Detail=json.dumps({"order": n * 10 + i, "total": 150})) for i in range(10)
            ]
        )
        assert answer["FailedEntryCount"] == 0
        acknowledged.extend(range(n * 10, n * 10 + 10))
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    done_before = len(lines(out))
    second = RouterProcess(state, tmp_path, target=target, env=env)
    try:
        # Started before it is stopped: under load the first may have run every invocation
        # before its kill, and a router told to stop while it imports dies of the signal.
        second.wait_for(lambda rs: any(r.get("event") == "router started" for r in rs))
        # each event: reserve_stock, bill (input_path) and review (total > 100)
        wait_until(lambda: len({tuple(line.split()[:2]) for line in lines(out)}) >= 900)
    finally:
        assert second.stop() == 0
    handled = {tuple(line.split()[:2]) for line in lines(out)}
    for name in ("reserve_stock", "bill", "review"):
        assert {int(o) for n, o in handled if n == name} == set(acknowledged)
    assert done_before == 0  # the gate held them: every one ran after the restart

    # Replay the archive to one rule from the command line; a running router runs them.
    third = RouterProcess(state, tmp_path, target=target, env=env)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "eventrouter",
                "replay",
                target,
                "--state-dir",
                str(state),
                "--bus",
                "orders",
                "--from",
                "2020-01-01T00:00:00Z",
                "--to",
                "2100-01-01",
                "--rule",
                "review",
                "--name",
                "again",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "again: 300 events replayed, 300 invocations queued"
        wait_until(lambda: sum(1 for line in lines(out) if line.endswith(" again")) >= 300)
    finally:
        assert third.stop() == 0
    replayed = [line.split() for line in lines(out) if line.endswith(" again")]
    assert {r[0] for r in replayed} == {"review"}
    assert sorted(int(r[1]) for r in replayed) == acknowledged
