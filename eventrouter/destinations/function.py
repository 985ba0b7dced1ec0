"""``to_function``: the record becomes an asynchronous invocation of another function."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from eventrouter.arns import function_arn
from eventrouter.errors import ConfigError
from eventrouter.keywords import checked

if TYPE_CHECKING:
    from eventrouter.contract.spec import Services


class ToFunction(msgspec.Struct, frozen=True):
    name: str

    def describe(self) -> str:
        return f"function:{self.name}"

    def permission(self, key: str) -> tuple[str, str]:
        return "lambda:InvokeFunction", function_arn(self.name)

    def check(self, runtime: Services) -> None:
        if self.name not in runtime.router.functions:
            raise ConfigError(
                f"destination {self.describe()}: no function {self.name!r} is registered"
            )

    async def send(self, runtime: Services, record: bytes, key: str) -> None:
        await runtime.enqueue_invocation(self.name, record)


@checked
def to_function(name: str) -> ToFunction:
    """Send the invocation record to function ``name``, invoked asynchronously.

    >>> @router.on_event(on_failure=to_function("audit"))
    ... async def charge(order): ...
    """
    return ToFunction(name)
