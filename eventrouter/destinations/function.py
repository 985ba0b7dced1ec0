"""``to_function``: the record becomes an asynchronous invocation of another function."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from eventrouter.errors import ConfigError

if TYPE_CHECKING:
    from eventrouter.runtime.engine import Engine


class ToFunction(msgspec.Struct, frozen=True):
    name: str

    def describe(self) -> str:
        return f"function:{self.name}"

    def permission(self, key: str) -> tuple[str, str]:
        from eventrouter.events import function_arn

        return "lambda:InvokeFunction", function_arn(self.name)

    def check(self, engine: Engine) -> None:
        if self.name not in engine.router.functions:
            raise ConfigError(
                f"destination {self.describe()}: no function {self.name!r} is registered"
            )

    async def send(self, engine: Engine, record: bytes, key: str) -> None:
        await engine.enqueue_invocation(self.name, record)


def to_function(name: str) -> ToFunction:
    """Send the invocation record to function ``name``, invoked asynchronously.

    >>> @router.on_event(on_failure=to_function("audit"))
    ... async def charge(order): ...
    """
    return ToFunction(name)
