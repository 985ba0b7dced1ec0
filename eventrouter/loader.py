"""Find the router a command should serve: ``module:attribute``, a module, or ``handlers``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from types import ModuleType

from eventrouter.errors import ConfigError
from eventrouter.router import Router, default_router

DEFAULT_TARGET = "handlers"


def load_router(target: str | None = None) -> Router:
    """Import ``target`` and return its router.

    ``"pkg.module:name"`` names the router; ``"pkg.module"`` uses its ``router`` attribute or,
    failing that, the default router that module-level ``on_event`` registers on. A package's
    submodules are all imported, so ``handlers/*.py`` can be plain modules. Each function
    records the import time as the cold-start part of its Init Duration.
    """
    target = target or DEFAULT_TARGET
    module_name, _, attribute = target.partition(":")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    start = time.monotonic()
    try:
        module = importlib.import_module(module_name)
        _import_submodules(module)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(
                f"cannot import {module_name!r} (from {target!r}): run from the directory that "
                "holds it, or name a module:router target"
            ) from exc
        raise
    import_duration = time.monotonic() - start
    if attribute:
        router = getattr(module, attribute, None)
        if not isinstance(router, Router):
            raise ConfigError(f"{target!r}: {attribute!r} is not a Router in {module_name}")
    else:
        found = getattr(module, "router", None)
        router = found if isinstance(found, Router) else default_router()
    if not router.functions:
        raise ConfigError(f"{target!r}: the router {router.name!r} has no functions")
    for spec in router.functions.values():
        if spec.import_duration == 0.0:
            spec.import_duration = import_duration
    return router


def _import_submodules(module: ModuleType) -> None:
    path = getattr(module, "__path__", None)
    if path is None:
        return
    for info in pkgutil.walk_packages(path, prefix=f"{module.__name__}."):
        importlib.import_module(info.name)
