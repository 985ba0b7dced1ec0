"""Public constructors refuse a misspelt keyword with a message that says what to write.

Python's own ``TypeError: Unexpected keyword argument 'batchsize'`` names neither the class
nor the right spelling (and for ``Router`` names an internal class). Every public settings
class and factory goes through :func:`unknown_keyword`, so a typo reads::

    ConfigError: Queue(batchsize=...): unknown setting 'batchsize' (did you mean
    'batch_size'?); Queue takes: name, batch_size

Settings ``Struct``\\ s get it from their metaclass :class:`CheckedStructMeta` (the check runs
only once construction has already failed, so a correct call costs nothing more); plain
classes from :class:`CheckedMeta` and factory functions from :func:`checked`.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

import msgspec

from eventrouter.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def unknown_keyword(owner: str, name: str, valid: Iterable[str]) -> ConfigError:
    """The error for ``owner(name=...)`` where ``name`` is not one of ``valid``."""
    names = [v for v in valid if not v.startswith("_")]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"{owner}({name}=...): unknown setting {name!r}{hint}; {owner} takes: {', '.join(names)}"
    )


def _refuse(owner: str, valid: list[str], kwargs: dict[str, Any]) -> None:
    for key in kwargs:
        if key not in valid:
            raise unknown_keyword(owner, key, valid)


def _parameters(call: Callable[..., Any]) -> list[str]:
    return [
        p.name
        for p in inspect.signature(call).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
    ]


class CheckedStructMeta(msgspec.StructMeta):
    """The metaclass of public settings ``Struct``\\ s: a misspelt keyword is a ConfigError."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except TypeError as exc:
            fields: tuple[str, ...] = cls.__struct_fields__
            _refuse(cls.__name__, list(fields), kwargs)
            if str(exc).startswith("Missing required argument"):
                missing = str(exc).removeprefix("Missing required argument ")
                raise ConfigError(
                    f"{cls.__name__}(...) needs {missing}; {cls.__name__} takes: "
                    f"{', '.join(fields)}"
                ) from None
            raise


class CheckedMeta(type):
    """The same for a plain class (``Router``): its ``__init__``'s parameters are the list."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except TypeError as exc:
            if "keyword argument" not in str(exc):
                raise
            _refuse(cls.__name__, _parameters(cast(Any, cls).__init__), kwargs)
            raise


def checked(factory: F) -> F:
    """A factory function (``to_sqs``) that names a misspelt keyword the same way."""
    valid = _parameters(factory)

    @functools.wraps(factory)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return factory(*args, **kwargs)
        except TypeError as exc:
            if "keyword argument" not in str(exc):
                raise
            _refuse(factory.__name__, valid, kwargs)
            raise

    return call  # type: ignore[return-value]
