"""A ``python -m eventrouter run`` child process whose JSON log lines are read as they come."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]


#: The records that say a router (or its supervisor) serves: signal handlers are in place.
_STARTED = ("router started", "workers started")


class RouterProcess:
    """One ``python -m eventrouter run`` whose JSON log lines are read as they come."""

    def __init__(
        self,
        state_dir: Path,
        out: Path,
        *extra: str,
        target: str = "tests.apps.durable:router",
        env: dict[str, str] | None = None,
        python: str | Path = sys.executable,
        cwd: Path = ROOT,
    ) -> None:
        env = {
            **os.environ,
            "DURABLE_OUT": str(out / "processed.log"),
            "DURABLE_STARTED": str(out / "started.log"),
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            [
                str(python),
                "-m",
                "eventrouter",
                "run",
                target,
                "--state-dir",
                str(state_dir),
                "--log-format",
                "json",
                *extra,
                # run serves HTTP on 127.0.0.1:8000 by default: not in tests that did not ask.
                *([] if _serves_http(extra, env) else ["--no-http"]),
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.records: list[dict[str, Any]] = []
        #: Its standard error reached its end: the process is gone.
        self.ended = False
        self._cond = threading.Condition()
        assert self.proc.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                record = msgspec.json.decode(line)
            except msgspec.DecodeError:
                record = {"event": "raw", "line": line.decode(errors="replace")}
            with self._cond:
                self.records.append(record)
                self._cond.notify_all()
        with self._cond:  # the process closed its stderr: it is gone (stop() waits on it)
            self.ended = True
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 30
    ) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.records), timeout):
                raise AssertionError(f"timed out; last log records: {self.records[-5:]}")

    def successes(self, function: str) -> int:
        return sum(
            1
            for r in self.records
            if r.get("event") == "REPORT"
            and r.get("function") == function
            and r.get("status") == "success"
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the router; its exit code. A graceful stop waits until the router has
        started first: one told to stop while it still imports dies of the signal, which a
        test that found its work already done (by a router before it) would not mean."""
        if sig in (signal.SIGTERM, signal.SIGINT):
            with self._cond:
                self._cond.wait_for(
                    lambda: (
                        self.proc.poll() is not None
                        or any(r.get("event") in _STARTED for r in self.records)
                    ),
                    timeout,
                )
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code


def _serves_http(extra: tuple[str, ...], env: dict[str, str]) -> bool:
    return bool({"--http", "--uds"} & {e.split("=")[0] for e in extra}) or "EVENTROUTER_HTTP" in env


def wait_until(condition: Callable[[], bool], within: float = 60) -> None:
    """For conditions only another process's files show: poll them."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
