"""``Router`` and ``on_event``: the registry users build, and the default router."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from eventrouter.contract.spec import FunctionSpec
from eventrouter.registry import Registry, Source

if TYPE_CHECKING:
    from eventrouter.http.app import HttpApp

__all__ = ["FunctionSpec", "Router", "Source", "default_router", "on_event"]

F = TypeVar("F", bound=Callable[..., Any])


class Router(Registry):
    __doc__ = Registry.__doc__

    def asgi(self, *, state_dir: str | None = None) -> HttpApp:
        """The ASGI application serving this router's HTTP routes and the Invoke API.

        Mount it in Starlette / FastAPI or serve it with any ASGI server; the router's engine
        starts on the ASGI lifespan startup (or on the first request) and stops on shutdown.
        """
        from eventrouter.http.app import HttpApp
        from eventrouter.runtime.engine import Engine

        return HttpApp(self, start=functools.partial(Engine, self, state_dir=state_dir))


_default_router: Router | None = None


def default_router() -> Router:
    """The router that module-level :func:`on_event` registers on."""
    global _default_router
    if _default_router is None:
        _default_router = Router()
    return _default_router


def on_event(
    source: Source | None = None, *, name: str | None = None, **settings: Any
) -> Callable[[F], F]:
    """Register on the default router: ``@on_event(None, timeout=5)``."""
    return default_router().on_event(source, name=name, **settings)
