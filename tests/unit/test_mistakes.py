"""Common mistakes are refused where they are made, with a message that says what to write."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventrouter import (
    ConfigError,
    Context,
    EventRule,
    Kafka,
    Permission,
    Queue,
    Router,
    Schedule,
    Sqs,
    on_event,
    to_sqs,
)
from eventrouter.router import default_router

TYPOS: list[tuple[Callable[[], Any], str, str]] = [
    (lambda: Queue("q", batchsize=1), "Queue(batchsize=...)", "batch_size"),
    (lambda: Sqs("q", batch_sise=2), "Sqs(batch_sise=...)", "batch_size"),
    (lambda: Schedule("rate(1 minute)", time_zone="UTC"), "Schedule(time_zone=...)", "timezone"),
    (lambda: EventRule(patern={"source": ["x"]}), "EventRule(patern=...)", "pattern"),
    (lambda: Kafka("t", grup="g"), "Kafka(grup=...)", "group"),
    (lambda: Router(max_concurency=3), "Router(max_concurency=...)", "max_concurrency"),
    (lambda: Permission(principl="*"), "Permission(principl=...)", "principal"),
    (lambda: to_sqs("q", regon="eu-west-1"), "to_sqs(regon=...)", "region"),
    (lambda: Router().on_event(None, timout=3), "on_event(timout=...)", "timeout"),
]


@pytest.mark.parametrize(("build", "owner", "meant"), TYPOS)
def test_a_misspelt_setting_names_the_class_and_the_right_spelling(
    build: Callable[[], Any], owner: str, meant: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build()
    message = str(caught.value)
    assert message.startswith(owner), message
    assert f"did you mean {meant!r}?" in message
    assert "takes: " in message and meant in message.split("takes: ")[1]
    assert "Registry" not in message and "__init__" not in message


def test_a_correct_call_and_a_wrong_type_are_not_reported_as_typos() -> None:
    assert Queue("q", batch_size=2).batch_size == 2
    with pytest.raises(ConfigError, match=r"Queue\(\.\.\.\) needs 'name'; Queue takes: name"):
        Queue()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="Extra positional"):
        Queue("q", 1, 2)  # type: ignore[call-arg]


def test_bare_on_event_registers_the_function() -> None:
    router = Router("bare")

    @router.on_event
    async def ping(event: dict[str, Any]) -> str:
        return "pong"

    assert "ping" in router.functions and router.functions["ping"].source is None
    before = set(default_router().functions)

    @on_event
    async def bare_module_level(event: dict[str, Any]) -> None: ...

    assert set(default_router().functions) - before == {"bare_module_level"}
    default_router().functions.pop("bare_module_level")


def test_a_handler_given_with_settings_where_the_source_goes_is_refused() -> None:
    async def handler(event: Any) -> None: ...

    with pytest.raises(ConfigError, match="the first argument is the source"):
        Router().on_event(handler, timeout=3)  # type: ignore[arg-type]


async def _context_first(ctx, event):  # type: ignore[no-untyped-def]
    ...


async def _annotated_context_first(ctx: Context) -> None: ...


async def _required_keyword(event: Any, ctx: Any, *, tenant: str) -> None: ...


async def _second_is_not_a_context(event: Any, ctx: int) -> None: ...


async def _three(event: Any, ctx: Any, extra: Any) -> None: ...


@pytest.mark.parametrize(
    ("handler", "says"),
    [
        (_context_first, "the context comes second"),
        (_annotated_context_first, "the context comes second"),
        (_required_keyword, "keyword-only parameter 'tenant' has no default"),
        (_second_is_not_a_context, "annotate it Context or leave it unannotated"),
        (_three, "it has 3 positional parameters"),
    ],
)
def test_a_signature_the_router_cannot_call_is_refused_at_registration(
    handler: Callable[..., Any], says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        Router().on_event(None)(handler)


def test_signatures_the_router_calls_are_accepted() -> None:
    router = Router()

    async def a(event: Any) -> None: ...
    async def b(event: Any, ctx: Context) -> None: ...
    async def c(event: Any, context: Any, *, flag: bool = False) -> None: ...

    for handler in (a, b, c):
        router.on_event(None)(handler)
    assert set(router.functions) == {"a", "b", "c"}


SHOP = """
from eventrouter import Router
router = Router("shop")
admin = Router("admin")

@router.on_event(None)
async def charge(event): ...
"""


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("shop.py:router", "'shop.py:router' is a file name, not a module: write shop:router"),
        ("./shop.py", "'./shop.py' is a file name, not a module: write shop"),
        ("app/shop.py", "write shop from the folder 'app' (or app.shop from the project's root)"),
        ("shop:routr", "shop has no attribute 'routr' (did you mean shop:router?); "
                       "the module's routers: admin, router"),
        ("shop:charge", "'charge' in shop is a function, not a Router"),
    ],
)  # fmt: skip
def test_a_target_that_is_no_module_router_says_what_is_wrong(
    target: str, says: str, tmp_path: Path
) -> None:
    (tmp_path / "shop.py").write_text(SHOP)
    done = subprocess.run(
        [sys.executable, "-m", "eventrouter", "routes", target],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
