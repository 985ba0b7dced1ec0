"""Settings objects: frozen, keyword-only msgspec Structs validated where they are built.

A value out of range raises :class:`~eventrouter.errors.ConfigError` naming the field, the
value and the allowed range, e.g.::

    >>> FunctionSettings(timeout=901)
    Traceback (most recent call last):
    ConfigError: timeout=901 is out of range: allowed 0 < timeout <= 900 (seconds)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from eventrouter.errors import ConfigError
from eventrouter.keywords import CheckedStructMeta, unknown_keyword

#: Lambda's payload limits (bytes).
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
#: Lambda's limit on the Init phase (seconds).
INIT_TIMEOUT = 10.0
ISOLATIONS = ("inline", "process")


def check_range(
    field: str, value: float, low: float, high: float, *, low_open: bool = False, unit: str = ""
) -> None:
    """Raise ``ConfigError`` unless ``low <= value <= high`` (``low < value`` if ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{field}={value!r} must be a number")
    ok_low = value > low if low_open else value >= low
    if not (ok_low and value <= high):
        op = "<" if low_open else "<="
        suffix = f" ({unit})" if unit else ""
        raise ConfigError(
            f"{field}={value!r} is out of range: allowed {low:g} {op} {field} <= {high:g}{suffix}"
        )


class FunctionSettings(msgspec.Struct, frozen=True, kw_only=True, metaclass=CheckedStructMeta):
    """The settings of one function, with Lambda's defaults and ranges.

    ``on_success`` / ``on_failure`` take a destination (``to_function``, ``to_queue``,
    ``to_directory``); ``init`` a callable (sync or async, no arguments) that runs once before
    the first invocation, under the 10 s Init limit.
    """

    timeout: float = 3.0
    reserved_concurrency: int | None = None
    memory_mb: int = 128
    max_retries: int = 2
    max_event_age: float = 21_600.0
    retry_delays: tuple[float, ...] = (60.0, 120.0)
    on_success: Any = None
    on_failure: Any = None
    init: Callable[[], Any] | None = None
    #: The execution role: an IAM policy document (dict, JSON text or file path) governing
    #: what the function may do when permissions are enforced.
    role: Any = None
    #: The function's resource policy document (who may invoke it), and/or ``Permission``\s.
    resource_policy: Any = None
    permissions: tuple[Any, ...] = ()
    #: ``"inline"``: the handler runs in the router's event loop (fastest); ``"process"``: in
    #: execution environments of its own, with a hard timeout and a memory limit.
    isolation: str = "inline"
    #: Seconds a warm process environment may stay idle before it is shut down.
    idle_timeout: float = 300.0
    #: Lambda's ``LoggingConfig.LogFormat``: how the Invoke API's log tail is written,
    #: ``"Text"`` (START / lines / END / REPORT) or ``"JSON"`` (platform and JSON records).
    log_format: str = "Text"
    #: ``"Terminate"``: an invocation deeper than 16 in a chain is stopped (a recursive loop,
    #: ``eventrouter/lineage.py``); ``"Allow"``: never (Lambda's ``RecursiveLoop``).
    recursive_loop: str = "Terminate"
    #: Execution environments (``isolation="process"``) started and initialised before the
    #: router is ready and kept warm; an inline function's init runs at start instead.
    provisioned_concurrency: int = 0
    #: SnapStart: ``isolation="process"`` environments are forked from a template that
    #: imported the module and ran init once (``eventrouter/snapstart.py``: runtime hooks).
    snapstart: bool = False

    def __post_init__(self) -> None:
        check_range("timeout", self.timeout, 0, 900, low_open=True, unit="seconds")
        if self.reserved_concurrency is not None:
            check_int("reserved_concurrency", self.reserved_concurrency, 0, 1_000_000)
        check_int("memory_mb", self.memory_mb, 128, 10_240, "MB")
        check_int("max_retries", self.max_retries, 0, 2)
        check_range("max_event_age", self.max_event_age, 60, 21_600, unit="seconds")
        if not isinstance(self.retry_delays, tuple) or not 1 <= len(self.retry_delays) <= 2:
            raise ConfigError(
                f"retry_delays={self.retry_delays!r} must be a tuple of 1 or 2 delays in seconds"
            )
        for delay in self.retry_delays:
            check_range("retry_delays", delay, 0, 21_600, unit="seconds")
        check_int("provisioned_concurrency", self.provisioned_concurrency, 0, 1_000_000)
        if self.snapstart and self.isolation != "process":
            raise ConfigError(
                "snapstart=True forks execution environments from a snapshot: it needs "
                "isolation='process'"
            )
        if (
            self.reserved_concurrency is not None
            and self.provisioned_concurrency > self.reserved_concurrency
        ):
            raise ConfigError(
                f"provisioned_concurrency={self.provisioned_concurrency} is more than "
                f"reserved_concurrency={self.reserved_concurrency}"
            )
        if self.recursive_loop not in ("Terminate", "Allow"):
            raise ConfigError(
                f"recursive_loop={self.recursive_loop!r} is not one of 'Terminate', 'Allow'"
            )
        if self.log_format not in ("Text", "JSON"):
            raise ConfigError(f"log_format={self.log_format!r} is not one of 'Text', 'JSON'")
        if self.isolation not in ISOLATIONS:
            raise ConfigError(
                f"isolation={self.isolation!r} is not one of {', '.join(map(repr, ISOLATIONS))}"
            )
        check_range("idle_timeout", self.idle_timeout, 0, 86_400, low_open=True, unit="seconds")
        for field in ("on_success", "on_failure"):
            target = getattr(self, field)
            if target is not None and not hasattr(target, "send"):
                raise ConfigError(
                    f"{field}={target!r} is not a destination: "
                    "use to_function(), to_queue() or to_directory()"
                )
        if self.init is not None and not callable(self.init):
            raise ConfigError(f"init={self.init!r} must be callable")

    def retry_delay(self, attempt: int) -> float:
        """The wait before attempt ``attempt + 1`` after ``attempt`` failed (1-based)."""
        return self.retry_delays[min(attempt, len(self.retry_delays)) - 1]


def check_int(field: str, value: int, low: int, high: int, unit: str = "") -> None:
    """Raise ``ConfigError`` unless ``value`` is an int (not a bool) in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{field}={value!r} must be an int")
    check_range(field, value, low, high, unit=unit)


def build_settings(settings: dict[str, Any]) -> FunctionSettings:
    """Build :class:`FunctionSettings` from keyword arguments, naming an unknown one."""
    known = FunctionSettings.__struct_fields__
    for key in settings:
        if key not in known:
            raise unknown_keyword("on_event", key, sorted((*known, "name", "env")))
    for name in ("retry_delays", "permissions"):
        if isinstance(settings.get(name), list):
            settings = {**settings, name: tuple(settings[name])}
    return FunctionSettings(**settings)
