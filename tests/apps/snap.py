"""Handlers of the SnapStart tests (imported by name in the template process)."""

from __future__ import annotations

import os
import random
import time
from typing import Any

from eventrouter.snapstart import register_after_restore, register_before_snapshot

#: Made once, at import, in the template: the same in every restored environment...
AT_IMPORT = random.getrandbits(64)
#: ... unless an after_restore hook makes it again.
UNIQUE = {"token": AT_IMPORT}
HOOKS: list[str] = []


@register_before_snapshot
def before() -> None:
    HOOKS.append(f"before_snapshot in {os.getpid()}")


@register_after_restore
def after() -> None:
    UNIQUE["token"] = random.SystemRandom().getrandbits(64)
    HOOKS.append(f"after_restore in {os.getpid()}")


def ident(event: Any) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "at_import": AT_IMPORT,
        "token": UNIQUE["token"],
        "random": random.getrandbits(64),
        "hooks": HOOKS,
        "now": time.time(),
    }


def sleepy(event: Any) -> str:
    time.sleep(float(event.get("seconds", 5)))
    return "slept"


def hungry(event: Any) -> int:
    block = bytearray(int(event["mb"]) * 1024 * 1024)
    for i in range(0, len(block), 4096):  # touch every page: resident, not just reserved
        block[i] = 1
    return len(block)


SOCKETS: list[Any] = []


def open_socket() -> None:
    """An init that connects somewhere: refused for a snapshot."""
    import socket

    SOCKETS.append(socket.socket())


def start_thread() -> None:
    import threading

    threading.Thread(target=time.sleep, args=(60,), name="poller", daemon=True).start()
