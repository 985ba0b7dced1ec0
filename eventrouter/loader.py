"""Find the router a command should serve: ``module:attribute``, a module, or ``handlers``."""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path
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
    given = target
    target = target or DEFAULT_TARGET
    module_name, _, attribute = target.partition(":")
    _check_module_name(target, module_name, attribute)
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    start = time.monotonic()
    try:
        module = importlib.import_module(module_name)
        _import_submodules(module)
    except ModuleNotFoundError as exc:
        if given is None and exc.name == DEFAULT_TARGET:
            raise ConfigError(
                f"no target given and no {DEFAULT_TARGET}/ package in {os.getcwd()}: name the "
                "module and its router, e.g. python -m eventrouter run app:router (app.py "
                "here, router = Router(...) in it)"
            ) from None
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
            raise ConfigError(_not_a_router(target, module, module_name, attribute, router))
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


def _check_module_name(target: str, module_name: str, attribute: str) -> None:
    """A file path where a module goes (``shop.py:router``, ``./shop.py``) is named as such."""
    if not (module_name.endswith(".py") or "/" in module_name or "\\" in module_name):
        return
    path = Path(module_name)
    stem = path.with_suffix("") if path.suffix == ".py" else path
    parts = [p for p in stem.parts if p not in (".", "")]
    folder = str(path.parent) if len(parts) > 1 else ""
    suggestion = parts[-1] if parts else module_name
    suffix = f":{attribute}" if attribute else ""
    where = f" from the folder {folder!r}" if folder and folder != "." else ""
    dotted = f" (or {'.'.join(parts)}{suffix} from the project's root)" if where else ""
    raise ConfigError(
        f"{target!r} is a file name, not a module: write {suggestion}{suffix}{where}{dotted}"
    )


def _not_a_router(
    target: str, module: ModuleType, module_name: str, attribute: str, found: object
) -> str:
    routers = sorted(n for n, v in vars(module).items() if isinstance(v, Router))
    have = (
        f"the module's routers: {', '.join(routers)}"
        if routers
        else f"{module_name} has no Router at module level"
    )
    close = difflib.get_close_matches(attribute, routers, n=1)
    hint = f" (did you mean {module_name}:{close[0]}?)" if close else ""
    if found is None:
        return f"{target!r}: {module_name} has no attribute {attribute!r}{hint}; {have}"
    return (
        f"{target!r}: {attribute!r} in {module_name} is a {type(found).__name__}, "
        f"not a Router{hint}; {have}"
    )
