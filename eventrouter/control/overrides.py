"""What an operator changed at run time through Lambda's control plane, kept in the state dir
(``control.json``) and applied again on every start. What a function's code sets is the
default; deleting an override returns to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec


class ConfigurationChange(msgspec.Struct, omit_defaults=True):
    """``UpdateFunctionConfiguration``: what is safe to change at run time."""

    timeout: float | None = None
    memory_mb: int | None = None
    environment: dict[str, str] | None = None


class InvokeConfig(msgspec.Struct, omit_defaults=True):
    """``Put/UpdateFunctionEventInvokeConfig``: asynchronous invocation's settings (``None``:
    what the code sets); destinations by ARN."""

    max_retries: int | None = None
    max_event_age: float | None = None
    on_success: str | None = None
    on_failure: str | None = None
    modified: float = 0.0


class MappingChange(msgspec.Struct, omit_defaults=True):
    """``UpdateEventSourceMapping`` of a function's pull source."""

    enabled: bool = True
    batch_size: int | None = None
    batching_window: float | None = None
    modified: float = 0.0


class Overrides(msgspec.Struct):
    #: ``PutFunctionConcurrency``: function -> reserved concurrent executions.
    concurrency: dict[str, int] = {}
    configuration: dict[str, ConfigurationChange] = {}
    invoke_configs: dict[str, InvokeConfig] = {}
    #: By function: a function has one source, so one mapping at most.
    mappings: dict[str, MappingChange] = {}
    #: ``AddPermission``: function -> the statements added (as Lambda writes them).
    added_statements: dict[str, list[dict[str, Any]]] = {}
    #: ``RemovePermission`` of statements the code declares: function -> their ``Sid``\ s.
    removed_statements: dict[str, list[str]] = {}
    #: ``PutFunctionRecursionConfig``: function -> ``"Allow"`` / ``"Terminate"``.
    recursion: dict[str, str] = {}
    #: ``PutProvisionedConcurrencyConfig``: function -> environments kept warm.
    provisioned: dict[str, int] = {}


def load(state_dir: str | os.PathLike[str]) -> Overrides:
    path = Path(state_dir) / "control.json"
    try:
        return msgspec.json.decode(path.read_bytes(), type=Overrides)
    except FileNotFoundError:
        return Overrides()


def save(state_dir: str | os.PathLike[str], overrides: Overrides) -> None:
    """Write ``control.json`` atomically (a temporary file renamed over it), mode 0600."""
    path = Path(state_dir) / "control.json"
    path.parent.mkdir(parents=True, exist_ok=True)
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
    _written[str(path)] = stamp(path)


#: The last ``control.json`` each path was written as by this process (``stamp``).
_written: dict[str, tuple[int, int] | None] = {}


def stamp(path: Path) -> tuple[int, int] | None:
    """What tells one version of a file from the next: its modification time and inode."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_mtime_ns, status.st_ino


def written_here(path: Path, seen: tuple[int, int] | None) -> bool:
    """Whether version ``seen`` of ``path`` is the one this process wrote last."""
    return _written.get(str(path)) == seen


@contextlib.contextmanager
def edit(state_dir: str | os.PathLike[str]) -> Iterator[Overrides]:
    """Change ``control.json``: read, yielded to change, written back unless the block
    raised; the workers of a router take turns (``control.lock``), so none loses another's
    change. Nothing may be awaited inside: the lock is not the event loop's."""
    lock_path = Path(state_dir) / "control.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        overrides = load(state_dir)
        yield overrides
        save(state_dir, overrides)
    finally:
        os.close(fd)
