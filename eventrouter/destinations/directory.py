"""``to_directory``: one JSON file per record, written atomically."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
import msgspec

from eventrouter.arns import directory_arn
from eventrouter.errors import ConfigError
from eventrouter.keywords import checked

if TYPE_CHECKING:
    from eventrouter.contract.spec import Services

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


class ToDirectory(msgspec.Struct, frozen=True):
    path: str

    def describe(self) -> str:
        return f"directory:{self.path}"

    def permission(self, key: str) -> tuple[str, str]:
        return "eventrouter:WriteFile", directory_arn(os.path.abspath(self.path).lstrip("/"))

    def folder(self, runtime: Services) -> Path:
        """Where the records go: a relative path is relative to the working directory, or,
        under ``eventrouter.testing``, to the test's temporary directory."""
        root = runtime.directory_root
        return Path(self.path) if root is None else Path(root) / self.path

    def check(self, runtime: Services) -> None:
        try:
            self.folder(runtime).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"destination {self.describe()}: {exc}") from exc

    async def send(self, runtime: Services, record: bytes, key: str) -> None:
        await anyio.to_thread.run_sync(self._write, self.folder(runtime), record, key)

    def _write(self, folder: Path, record: bytes, key: str) -> None:
        # The file name comes from the request id only, never from payload data, and is
        # stripped to a safe alphabet so that no record can steer it out of the directory.
        name = _UNSAFE.sub("_", key)[:128] or "record"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        # O_NOFOLLOW | O_EXCL: a link planted at the temporary name cannot redirect the write.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(record)
        os.replace(tmp, folder / f"{name}.json")


@checked
def to_directory(path: str | os.PathLike[str]) -> ToDirectory:
    """Write each invocation record as ``<path>/<request id>.json`` (temporary file + rename)."""
    return ToDirectory(os.fspath(path))
