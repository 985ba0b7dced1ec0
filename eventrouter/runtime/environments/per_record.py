"""The per-record form: the handler called once per item of a batch, in order, within one
invocation; ``ctx.index`` says how far it got when one raises. Used inline (the invoker) and
in a process environment (the worker). Specialised per handler kind: this loop runs per
record, and a generator or argument unpacking here doubled its cost (~100 → ~200 ns).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


async def each_async(
    handler: Callable[..., Any], items: Sequence[Any], ctx: Any, takes_context: bool
) -> None:
    if takes_context:
        for i, item in enumerate(items):
            ctx.index = i
            await handler(item, ctx)
    else:
        for i, item in enumerate(items):
            ctx.index = i
            await handler(item)


def each(handler: Callable[..., Any], items: Sequence[Any], ctx: Any, takes_context: bool) -> None:
    if takes_context:
        for i, item in enumerate(items):
            ctx.index = i
            handler(item, ctx)
    else:
        for i, item in enumerate(items):
            ctx.index = i
            handler(item)
