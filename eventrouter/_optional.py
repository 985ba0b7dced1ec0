"""Optional backends, imported only when a source or destination needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from eventrouter.errors import ConfigError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or explain which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"{module} is needed here but not installed: pip install 'eventrouter[{extra}]'"
        ) from exc
