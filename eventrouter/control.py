"""What an operator changed at run time through Lambda's control plane, kept in the state dir
(``control.json``) and applied again on every start. What a function's code sets is the
default; deleting an override returns to it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import structlog

from eventrouter.errors import ConfigError

if TYPE_CHECKING:
    from eventrouter.registry import Registry
    from eventrouter.runtime.concurrency import Slots

log = structlog.get_logger("eventrouter")


class Overrides(msgspec.Struct):
    #: ``PutFunctionConcurrency``: function -> reserved concurrent executions.
    concurrency: dict[str, int] = {}


def load(state_dir: str | os.PathLike[str]) -> Overrides:
    path = Path(state_dir) / "control.json"
    try:
        return msgspec.json.decode(path.read_bytes(), type=Overrides)
    except FileNotFoundError:
        return Overrides()


def save(state_dir: str | os.PathLike[str], overrides: Overrides) -> None:
    """Write ``control.json`` atomically (a temporary file renamed over it), mode 0600."""
    path = Path(state_dir) / "control.json"
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, msgspec.json.encode(overrides))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)


def apply_overrides(slots: Slots, state_dir: str | os.PathLike[str]) -> None:
    """Apply what operators changed before this start."""
    for name, reserved in load(state_dir).concurrency.items():
        if name not in slots.functions:
            continue  # a function that is gone
        try:
            slots.reserve(name, reserved)
        except ConfigError as exc:
            log.warning("concurrency override not applied", function=name, error=str(exc))


def set_concurrency(
    slots: Slots,
    router: Registry,
    state_dir: str | os.PathLike[str],
    name: str,
    reserved: int | None,
) -> None:
    """``PutFunctionConcurrency`` (``None``: ``DeleteFunctionConcurrency``, back to what the
    code sets): applied at once, kept for later starts."""
    default = router.functions[name].settings.reserved_concurrency
    slots.reserve(name, default if reserved is None else reserved)
    overrides = load(state_dir)
    if reserved is None:
        overrides.concurrency.pop(name, None)
    else:
        overrides.concurrency[name] = reserved
    save(state_dir, overrides)
    log.info("reserved concurrency changed", function=name, reserved=reserved, default=default)
