"""``EventBus`` and ``EventRule``: embedded event buses and the rules that route their events.

A bus exists when it is declared (``Router(buses=[EventBus("orders", archive_days=7)])``),
named by a rule, or is ``"default"``. A rule's pattern is EventBridge's syntax (the filters
module), matched against the whole envelope; each matching rule's function gets its own
asynchronous invocation.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import msgspec

from eventrouter.arns import DEFAULT_BUS, bus_name, event_bus_arn, rule_arn
from eventrouter.bus.transform import Transformer, check_path
from eventrouter.config import check_int
from eventrouter.contract.spec import Model, SourceBase, messaging
from eventrouter.errors import ConfigError
from eventrouter.filters import Matcher, compile_pattern
from eventrouter.keywords import CheckedStructMeta

#: The service principal rules invoke their functions as.
EVENTS_SERVICE = "events.amazonaws.com"
_BUS_NAME = re.compile(r"[/.\-_A-Za-z0-9]{1,256}")


def check_bus_name(name: object) -> str:
    if not isinstance(name, str) or not _BUS_NAME.fullmatch(name):
        raise ConfigError(
            f"event bus name {name!r} is not valid: "
            "use 1 to 256 letters, digits, '.', '-', '_' or '/'"
        )
    return name


class EventBus(msgspec.Struct, frozen=True, metaclass=CheckedStructMeta):
    """An embedded event bus's settings: ``archive_days`` (0: no archive) keeps every event
    put on it for replay; ``policy`` is its resource policy (who may ``events:PutEvents``
    when permissions are enforced)."""

    name: str
    archive_days: int = 0
    policy: Any = None

    def __post_init__(self) -> None:
        check_bus_name(self.name)
        check_int("archive_days", self.archive_days, 0, 36_500, "days, 0 = no archive")

    @property
    def arn(self) -> str:
        return event_bus_arn(self.name)


class EventRule(SourceBase, frozen=True, dict=True, metaclass=CheckedStructMeta):
    """Invoke the function with every event of ``bus`` that matches ``pattern``::

        @router.on_event(EventRule(bus="orders", pattern={"source": ["shop"],
                                                          "detail-type": ["order.placed"]}))
        async def reserve_stock(event, ctx): ...

    ``input_path`` (``"$.detail"``) or ``input_transformer`` (``{"InputPathsMap": {...},
    "InputTemplate": "..."}``) shape what the function receives; by default the envelope.
    ``name``: the rule's name, default the function's.
    """

    model: ClassVar[Model] = "async"
    principal: ClassVar[str | None] = EVENTS_SERVICE
    batch_size: ClassVar[int] = 1
    named_queue: ClassVar[None] = None

    pattern: dict[str, Any]
    bus: str = DEFAULT_BUS
    name: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_bus_name(bus_name(self.bus))
        if not isinstance(self.pattern, dict) or not self.pattern:
            raise ConfigError(f"EventRule pattern={self.pattern!r} must be a non-empty object")
        matcher = compile_pattern(self.pattern, "pattern")
        if self.input_path is not None and self.input_transformer is not None:
            raise ConfigError("EventRule takes input_path or input_transformer, not both")
        if self.input_path is not None:
            check_path(self.input_path, "input_path")
        transformer = (
            Transformer(self.input_transformer) if self.input_transformer is not None else None
        )
        self.__dict__.update(_matcher=matcher, _transformer=transformer)

    @property
    def bus_name(self) -> str:
        return bus_name(self.bus)

    @property
    def matcher(self) -> Matcher:
        matcher: Matcher = self.__dict__["_matcher"]
        return matcher

    @property
    def transformer(self) -> Transformer | None:
        transformer: Transformer | None = self.__dict__["_transformer"]
        return transformer

    @property
    def arn(self) -> str:
        return rule_arn(self.bus_name, self.name or "?")

    def bind(self, function: str) -> EventRule:
        return self if self.name else msgspec.structs.replace(self, name=function)

    def source_arns(self) -> list[str]:
        return [self.arn]

    def adapter(self, spec: Any, runtime: Any) -> None:
        return None  # the engine's buses enqueue its events into the function's queue

    def trace_attributes(self) -> dict[str, Any]:
        return messaging("eventrouter", f"{self.bus_name}/{self.name}")

    def describe(self) -> str:
        return f"bus:{self.bus_name} rule:{self.name}"
