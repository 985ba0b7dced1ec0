"""The ``Destination`` protocol: what ``on_success`` / ``on_failure`` (and a function's
``to_*`` sends) accept. The destinations themselves are :mod:`eventrouter.destinations`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from eventrouter.contract.ports import Services


class Destination(Protocol):
    """What ``on_success`` / ``on_failure`` accept."""

    def describe(self) -> str: ...

    def permission(self, key: str) -> tuple[str, str]:
        """The action and resource ARN a role must allow for the record of event ``key``."""
        ...

    def check(self, services: Services) -> None:
        """Raise ``ConfigError`` at start-up if the destination cannot work."""

    async def send(self, services: Services, record: bytes, key: str) -> None: ...
