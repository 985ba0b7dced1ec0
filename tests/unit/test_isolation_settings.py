"""Settings of process isolation and external functions: checked at registration."""

from __future__ import annotations

from typing import Any

import pytest

from eventrouter import ConfigError, Router
from eventrouter.runtime.environments.environment import exit_description, tree_rss_kb


async def handler(event: Any) -> None: ...


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"isolation": "thread"}, "isolation='thread' is not one of 'inline', 'process'"),
        ({"idle_timeout": 0}, "idle_timeout=0 is out of range"),
        ({"idle_timeout": 86_401}, "idle_timeout=86401 is out of range"),
        ({"memory_mb": 64}, "memory_mb=64 is out of range"),
    ],
)
def test_bad_isolation_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Router().on_event(None, **settings)(handler)


@pytest.mark.parametrize(
    ("command", "options", "message"),
    [
        ("node index.js", {}, "must be a non-empty list of strings"),
        ([], {}, "must be a non-empty list of strings"),
        (["node", 3], {}, "must be a non-empty list of strings"),
        (["node"], {"env": {"A": 1}}, "env must map strings to strings"),
        (["node"], {"isolation": "inline"}, "runs isolation='process'"),
        (["node"], {"init": print}, "initialises itself"),
        (["node"], {"timeout": 0}, "timeout=0 is out of range"),
    ],
)
def test_bad_external_functions_are_refused(
    command: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Router().external("fn", command, **options)


def test_external_function_is_registered_isolated() -> None:
    router = Router()
    router.external("resize", ["node", "index.js"], env={"A": "b"}, cwd="/srv", memory_mb=512)
    spec = router.function("resize")
    assert spec.isolated and spec.command == ("node", "index.js")
    assert spec.environment == {"A": "b"} and spec.cwd == "/srv"
    assert spec.settings.memory_mb == 512
    with pytest.raises(ConfigError, match="registered twice"):
        router.external("resize", ["node", "other.js"])


def test_exit_descriptions_name_signals_as_lambda_does() -> None:
    assert exit_description(-11) == "signal: segmentation fault"
    assert exit_description(-9) == "signal: killed"
    assert exit_description(2) == "exit status 2"


def test_resident_memory_of_this_process_is_read() -> None:
    import os

    assert tree_rss_kb(os.getpid()) > 1024
    assert tree_rss_kb(2**22 + 12345) == 0  # no such process
