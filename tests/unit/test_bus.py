"""The event bus without HTTP: rule index, transformers, entries, fan-out, archive, replay."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import anyio
import pytest

from eventrouter import ConfigError, Context, EventBus, EventRule, Router, to_bus
from eventrouter.bus.buses import MAX_REQUEST_BYTES
from eventrouter.bus.index import RuleIndex
from eventrouter.bus.transform import Transformer, target_input
from eventrouter.errors import InvalidRequestContent
from eventrouter.filters import compile_pattern
from eventrouter.testing import run_router
from tests.lambda_models import check_event

pytestmark = pytest.mark.anyio

SOURCES = ["shop", "billing", "stock", "mail"]
TYPES = ["order.placed", "order.paid", "order.cancelled"]


def random_pattern(rng: random.Random) -> dict[str, Any]:
    pattern: dict[str, Any] = {}
    if rng.random() < 0.8:
        pattern["source"] = rng.sample(SOURCES, rng.randint(1, 2))
    if rng.random() < 0.5:
        pattern["detail-type"] = [rng.choice(TYPES)]
    if rng.random() < 0.4 or not pattern:
        pattern["detail"] = rng.choice(
            [
                {"total": [{"numeric": [">", rng.randint(0, 200)]}]},
                {"kind": [{"prefix": rng.choice(["a", "b"])}]},
                {"kind": [{"anything-but": ["abc"]}]},
                {"coupon": [{"exists": rng.random() < 0.5}]},
            ]
        )
    return pattern


def random_event(rng: random.Random) -> dict[str, Any]:
    detail: dict[str, Any] = {"total": rng.randint(0, 300), "kind": rng.choice(["abc", "bcd"])}
    if rng.random() < 0.5:
        detail["coupon"] = "X"
    return {"source": rng.choice(SOURCES), "detail-type": rng.choice(TYPES), "detail": detail}


def test_index_finds_exactly_what_a_scan_finds() -> None:
    rng = random.Random(16)
    patterns = [random_pattern(rng) for _ in range(400)]
    matchers = [compile_pattern(p) for p in patterns]
    index = RuleIndex((p, m, i) for i, (p, m) in enumerate(zip(patterns, matchers, strict=True)))
    assert len(index.scan) < 400 * 0.3  # most rules are filed under a field
    for _ in range(500):
        event = random_event(rng)
        assert index.match(event) == [i for i, m in enumerate(matchers) if m(event)]


def test_index_looks_at_few_rules_per_event() -> None:
    rules = [({"source": [f"app{i}"], "detail-type": ["x"]}, i) for i in range(10_000)]
    calls = 0

    def counting(pattern: dict[str, Any]) -> Any:
        inner = compile_pattern(pattern)

        def match(event: Any) -> bool:
            nonlocal calls
            calls += 1
            return inner(event)

        return match

    index = RuleIndex((p, counting(p), i) for p, i in rules)
    assert index.match({"source": "app7", "detail-type": "x"}) == [7]
    assert calls == 1


EVENT = {
    "version": "0",
    "id": "e1",
    "detail-type": "order.placed",
    "source": "shop",
    "time": "2026-12-03T12:00:00Z",
    "detail": {"order": 7, "customer": {"name": 'Ann "A"'}, "items": ["x", "y"]},
}
RAW = json.dumps(EVENT).encode()


def test_input_path_and_transformer() -> None:
    def run(**kw: Any) -> Any:
        return json.loads(target_input(EVENT, RAW, rule_name="r", rule_arn="arn:r", **kw))

    assert run(input_path=None, transformer=None) == EVENT
    assert run(input_path="$.detail.customer", transformer=None) == {"name": 'Ann "A"'}
    assert run(input_path="$.detail.items[1]", transformer=None) == "y"
    assert run(input_path="$.detail.nothing", transformer=None) is None
    t = Transformer(
        {
            "InputPathsMap": {
                "order": "$.detail.order",
                "name": "$.detail.customer.name",
                "items": "$.detail.items",
                "gone": "$.detail.gone",
            },
            "InputTemplate": '{"order": <order>, "who": "<name>", "items": <items>, '
            '"gone": <gone>, "rule": "<aws.events.rule-name>", "all": <aws.events.event>}',
        }
    )
    assert run(input_path=None, transformer=t) == {
        "order": 7,
        "who": 'Ann "A"',
        "items": ["x", "y"],
        "gone": None,
        "rule": "r",
        "all": EVENT,
    }
    text = Transformer({"InputPathsMap": {"o": "$.detail.order"}, "InputTemplate": "Order <o>!"})
    assert run(input_path=None, transformer=text) == "Order 7!"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": {}}, "non-empty object"),
        ({"pattern": {"source": "shop"}}, "a leaf is a non-empty list"),
        ({"pattern": {"source": [{"prefixx": "a"}]}}, "unknown operator 'prefixx'"),
        ({"pattern": {"source": ["a"]}, "input_path": "detail"}, "is not a JSON path"),
        (
            {
                "pattern": {"source": ["a"]},
                "input_path": "$.a",
                "input_transformer": {"InputTemplate": "x"},
            },
            "not both",
        ),
        (
            {"pattern": {"source": ["a"]}, "input_transformer": {"InputTemplate": "<x>"}},
            "<x> in InputTemplate is not in InputPathsMap",
        ),
        (
            {
                "pattern": {"source": ["a"]},
                "input_transformer": {
                    "InputPathsMap": {"AWS.x": "$.a"},
                    "InputTemplate": "<AWS.x>",
                },
            },
            "not a name",
        ),
        ({"pattern": {"source": ["a"]}, "bus": "bad bus!"}, "event bus name"),
    ],
)
def test_malformed_rules_are_config_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        EventRule(**kwargs)
    assert message in str(info.value)


def entry(**kw: Any) -> dict[str, Any]:
    base = {
        "Source": "shop",
        "DetailType": "order.placed",
        "Detail": '{"order": 1}',
        "EventBusName": "orders",
    }
    return {**base, **kw}


async def test_put_events_fans_out_and_answers_per_entry() -> None:
    router = Router("t", buses=[EventBus("orders", archive_days=1)])
    got: dict[str, list[Any]] = {"a": [], "b": [], "c": []}
    done = anyio.Event()

    def rule(label: str, **kw: Any) -> None:
        @router.on_event(EventRule(bus="orders", **kw), name=label)
        async def handler(event: Any, ctx: Context) -> None:
            got[label].append(event)
            if sum(map(len, got.values())) == 2:
                done.set()

    rule("a", pattern={"source": ["shop"]})
    rule("b", pattern={"detail-type": ["order.placed"]}, input_path="$.detail")
    rule("c", pattern={"detail": {"order": [{"numeric": [">", 5]}]}})

    async with run_router(router):
        results = await router.put_events(
            [
                entry(),
                entry(Source=""),
                entry(Detail="[1]"),
                entry(EventBusName="nope"),
                entry(Source="aws.s3"),
                entry(DetailType=None),
            ]
        )
        with anyio.fail_after(10):
            await done.wait()
        with pytest.raises(InvalidRequestContent):
            await router.put_events([])
        with pytest.raises(InvalidRequestContent):
            await router.put_events([entry()] * 11)
        with pytest.raises(InvalidRequestContent, match="over the limit"):
            await router.put_events([entry(Detail=json.dumps({"x": "y" * MAX_REQUEST_BYTES}))])
    assert "EventId" in results[0]
    assert [r.get("ErrorCode") for r in results[1:]] == [
        "InvalidArgument",
        "MalformedDetail",
        "ResourceNotFoundException",
        "NotAuthorizedForSourceException",
        "InvalidArgument",
    ]
    assert results[1]["ErrorMessage"] == (
        "Parameter Source is not valid. Reason: Source is a required argument."
    )
    (a,) = got["a"]
    check_event("eventbridge", a)
    assert a["id"] == results[0]["EventId"] and a["detail"] == {"order": 1}
    assert got["b"] == [{"order": 1}] and got["c"] == []


async def test_ctx_send_and_to_bus_as_a_destination() -> None:
    router = Router("t")
    seen: list[dict[str, Any]] = []
    two = anyio.Event()

    @router.on_event(on_success=to_bus("orders", source="shop", detail_type="order.result"))
    async def place(order: dict[str, Any], ctx: Context) -> dict[str, Any]:
        await ctx.send(to_bus("orders", source="shop", detail_type="order.placed"), order)
        return {"ok": order["order"]}

    @router.on_event(EventRule(bus="orders", pattern={"source": ["shop"]}))
    async def listen(event: dict[str, Any]) -> None:
        seen.append(event)
        if len(seen) == 2:
            two.set()

    async with run_router(router) as app:
        await app.invoke_async("place", {"order": 3})
        with anyio.fail_after(10):
            await two.wait()
    by_type = {e["detail-type"]: e["detail"] for e in seen}
    assert by_type["order.placed"] == {"order": 3}
    assert by_type["order.result"]["responsePayload"] == {"ok": 3}


def test_to_bus_needs_a_known_bus() -> None:
    router = Router("t")

    @router.on_event(on_failure=to_bus("ghost"))
    def f(event: Any) -> None: ...

    async def start() -> None:
        async with run_router(router):
            pass

    with pytest.raises(ConfigError, match="no such event bus"):
        anyio.run(start)


async def test_archive_and_replay_to_one_rule(tmp_path: Any) -> None:
    router = Router("t", buses=[EventBus("orders", archive_days=7)])
    seen: list[tuple[str, Any]] = []
    changed = asyncio.Event()

    for label in ("one", "two"):

        def make(label: str) -> None:
            @router.on_event(EventRule(bus="orders", pattern={"source": ["shop"]}), name=label)
            async def handler(event: dict[str, Any]) -> None:
                seen.append((label, event.get("replay-name")))
                changed.set()

        make(label)

    async def wait_for(n: int) -> None:
        with anyio.fail_after(10):
            while len(seen) < n:
                changed.clear()
                await changed.wait()

    async with run_router(router, state_dir=tmp_path) as app:
        await router.put_events([entry(), entry()])
        await wait_for(4)
        events, invocations = await app.engine.buses.replay("orders", 0, 2e9, rule="two", name="r1")
        await wait_for(6)
        with pytest.raises(ConfigError, match="has no rule"):
            await app.engine.buses.replay("orders", 0, 2e9, rule="nine", name="r2")
        # Replayed events are not archived again.
        assert (await app.engine.buses.replay("orders", 0, 2e9, name="r3")) == (2, 4)
        await wait_for(10)
    assert (events, invocations) == (2, 2)
    assert sorted(seen[4:6]) == [("two", "r1"), ("two", "r1")]
    assert sorted(seen[6:]) == [("one", "r3")] * 2 + [("two", "r3")] * 2


async def test_archived_events_past_their_retention_are_dropped(tmp_path: Any) -> None:
    router = Router(
        "t", buses=[EventBus("orders", archive_days=1), EventBus("audit", archive_days=30)]
    )

    @router.on_event(EventRule(bus="orders", pattern={"source": ["shop"]}))
    async def listen(event: dict[str, Any]) -> None: ...

    async with run_router(router, state_dir=tmp_path) as app:
        buses = app.engine.buses
        await router.put_events([entry(), entry(EventBusName="audit")])
        await buses.purge(now=time.time() + 2 * 86_400)  # two days on: orders' 1 day is past
        assert await buses.replay("orders", 0, 2e9, name="r") == (0, 0)
        assert (await buses.replay("audit", 0, 2e9, name="r"))[0] == 1
