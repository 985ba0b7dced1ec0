from __future__ import annotations

from typing import Any

import msgspec
import pytest

from eventrouter import ConfigError, Queue, Router, to_directory, to_function, to_queue
from eventrouter.config import FunctionSettings
from eventrouter.services.concurrency import RESERVED_LIMIT, Slots


async def noop(event: Any) -> None:
    return None


class Order(msgspec.Struct):
    id: int


class NotDecodable:
    pass


def register(**settings: Any) -> Any:
    router = Router("t")
    router.on_event(None, **settings)(noop)
    return router.functions["noop"].settings


def test_defaults_are_lambdas() -> None:
    s = register()
    assert s.timeout == 3.0
    assert s.reserved_concurrency is None
    assert s.memory_mb == 128
    assert s.max_retries == 2
    assert s.max_event_age == 21_600
    assert s.retry_delays == (60, 120)
    assert s.on_success is None and s.on_failure is None


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("timeout", [0.001, 900], [0, -1, 900.5]),
        ("reserved_concurrency", [None, 0, 5], [-1]),
        ("memory_mb", [128, 10_240], [127, 10_241]),
        ("max_retries", [0, 2], [-1, 3]),
        ("max_event_age", [60, 21_600], [59, 21_601]),
        ("retry_delays", [(0,), (0.1, 0.2), (21_600, 21_600)], [(), (1, 2, 3), (-1,), (21_601,)]),
    ],
)
def test_ranges(field: str, good: list[Any], bad: list[Any]) -> None:
    for value in good:
        assert getattr(register(**{field: value}), field) == value
    for value in bad:
        with pytest.raises(ConfigError) as info:
            register(**{field: value})
        assert field in str(info.value)
        if value != ():
            assert (
                repr(value[0] if isinstance(value, tuple) and len(value) == 1 else value)
                in str(info.value)
                or field == "retry_delays"
            )


def test_range_error_names_field_value_and_range() -> None:
    with pytest.raises(
        ConfigError, match=r"timeout=901 is out of range: allowed 0 < timeout <= 900"
    ):
        register(timeout=901)
    with pytest.raises(
        ConfigError, match=r"memory_mb=64 is out of range: allowed 128 <= memory_mb <= 10240"
    ):
        register(memory_mb=64)


def test_wrong_types_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="memory_mb"):
        register(memory_mb=256.5)
    with pytest.raises(ConfigError, match="max_retries"):
        register(max_retries=True)
    with pytest.raises(ConfigError, match="timeout"):
        register(timeout="3")
    with pytest.raises(ConfigError, match="on_failure"):
        register(on_failure="audit")
    with pytest.raises(ConfigError, match="init"):
        register(init=3)


def test_retry_delays_list_is_accepted_and_repeats_last() -> None:
    s = register(retry_delays=[1, 2])
    assert s.retry_delays == (1, 2)
    assert FunctionSettings(retry_delays=(5,)).retry_delay(2) == 5


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'timout'"):
        register(timout=3)


def test_destinations_accepted() -> None:
    s = register(on_success=to_queue("done"), on_failure=to_function("audit"))
    assert s.on_success == to_queue("done")
    assert register(on_failure=to_directory("out")).on_failure.path == "out"
    with pytest.raises(ConfigError, match="queue name"):
        to_queue("bad name!")


def test_duplicate_function_name_is_an_error() -> None:
    router = Router("t")
    router.on_event()(noop)
    with pytest.raises(ConfigError, match="registered twice"):
        router.on_event()(noop)
    router.on_event(name="other")(noop)
    assert set(router.functions) == {"noop", "other"}


def test_function_name_rules() -> None:
    router = Router("t")
    with pytest.raises(ConfigError, match="function name"):
        router.on_event(name="has space")(noop)
    with pytest.raises(ConfigError, match="function name"):
        router.on_event(name="x" * 65)(noop)


def test_handler_signature_is_checked() -> None:
    router = Router("t")

    async def three(a: Any, b: Any, c: Any) -> None: ...

    async def none() -> None: ...

    with pytest.raises(ConfigError, match="positional parameters"):
        router.on_event()(three)
    with pytest.raises(ConfigError, match="positional parameters"):
        router.on_event()(none)


def test_undecodable_payload_type_is_refused() -> None:
    router = Router("t")

    async def bad(event: NotDecodable) -> None: ...

    with pytest.raises(ConfigError, match="cannot be decoded"):
        router.on_event()(bad)


def test_payload_decoders() -> None:
    router = Router("t")

    async def typed(order: Order) -> None: ...

    async def raw(event, ctx):  # type: ignore[no-untyped-def]
        ...

    router.on_event()(typed)
    router.on_event()(raw)
    assert router.functions["typed"].decoder.decode(b'{"id": 1}') == Order(1)
    assert router.functions["raw"].decoder.decode(b"[1, 2]") == [1, 2]
    assert router.functions["raw"].takes_context
    assert not router.functions["typed"].takes_context


def test_queue_source_settings() -> None:
    assert Queue("orders").batch_size == 1
    with pytest.raises(ConfigError, match="batch_size"):
        Queue("orders", batch_size=0)
    with pytest.raises(ConfigError, match="batch_size"):
        Queue("orders", batch_size=10_001)
    with pytest.raises(ConfigError, match="queue name"):
        Queue("")


def test_unresolvable_annotation_is_a_clear_error() -> None:
    router = Router("t")

    class Local(msgspec.Struct):
        x: int

    async def handler(event: Local) -> None: ...

    with pytest.raises(ConfigError, match="cannot resolve the handler's annotations"):
        router.on_event()(handler)


def test_batch_handler_must_take_a_list() -> None:
    router = Router("t")

    async def single(event: int) -> None: ...

    async def many(events: list[int]) -> None: ...

    with pytest.raises(ConfigError, match="list"):
        router.on_event(Queue("q", batch_size=5))(single)
    router.on_event(Queue("q", batch_size=5))(many)
    assert router.functions["many"].decoder.decode(b"3") == 3


def test_a_queue_has_one_consumer_function() -> None:
    router = Router("t")
    router.on_event(Queue("jobs"))(noop)
    with pytest.raises(ConfigError, match="already consumed by function 'noop'"):
        router.on_event(Queue("jobs"), name="second")(noop)


def test_router_limits() -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        Router("t", max_concurrency=0)
    with pytest.raises(ConfigError, match="adds up to 8"):
        Slots(5, [("a", 4), ("b", 4)])


def test_module_level_on_event_uses_default_router() -> None:
    import eventrouter
    from eventrouter.router import default_router

    def module_level_fn(event: Any) -> None: ...

    eventrouter.on_event(name="module_level_fn_test")(module_level_fn)
    assert default_router().function("module_level_fn_test").handler is module_level_fn
    del default_router().functions["module_level_fn_test"]


def test_a_reservation_changed_at_run_time_keeps_the_counts_right() -> None:
    slots = Slots(10, [("a", None), ("b", 2)])
    a, b = slots.functions["a"], slots.functions["b"]
    assert slots.try_acquire(a) is None  # from the pool
    slots.reserve("a", 3)  # while one invocation of a is in flight
    assert (slots.pool, slots.free(a)) == (5, 2)
    slots.release(a)  # it gives its slot back to the pool it came from
    assert (slots.pool_in_flight, slots.free(a)) == (0, 3)
    slots.reserve("a", None)
    assert slots.pool == 8 and slots.free(a) == 8 and slots.free(b) == 2
    with pytest.raises(ConfigError, match="add up to 11"):
        slots.reserve("a", 9)
    slots.reserve("b", 0)
    assert slots.try_acquire(b) == RESERVED_LIMIT
