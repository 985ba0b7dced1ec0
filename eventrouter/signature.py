"""A handler's signature, read as the router reads it: what its first parameter's annotation
asks for (and so how events are decoded for it), whether it takes a context. Light on
purpose: process environments import it to read their handler without the registry.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from eventrouter.errors import ConfigError

#: Annotations that mean "the source's own event, as Lambda sends it".
RAW_TYPES: tuple[Any, ...] = (inspect.Parameter.empty, Any, dict, object)


def payload_type(handler: Callable[..., Any], name: str) -> tuple[Any, bool, Any]:
    """The annotation of the handler's first parameter and whether it takes a context."""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"function {name!r}: cannot read the handler's signature: {exc}") from exc
    params = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if not 1 <= len(params) <= 2:
        raise ConfigError(
            f"function {name!r}: a handler takes (event) or (event, context); "
            f"it has {len(params)} positional parameters"
        )
    required = [
        p.name
        for p in signature.parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    ]
    if required:
        raise ConfigError(
            f"function {name!r}: the keyword-only parameter {required[0]!r} has no default, "
            "and the router passes only (event) or (event, context): give it a default"
        )
    try:
        hints = typing.get_type_hints(handler)
    except Exception as exc:
        raise ConfigError(
            f"function {name!r}: cannot resolve the handler's annotations: {exc}"
        ) from exc
    first = hints.get(params[0].name)
    if _is_context(first) or (len(params) == 2 and params[0].name in _CONTEXT_NAMES):
        raise ConfigError(
            f"function {name!r}: the context comes second: write "
            f"def {getattr(handler, '__name__', name)}(event, {params[0].name}) "
            f"(it is ({', '.join(p.name for p in params)}))"
        )
    if len(params) == 2 and hints.get(params[1].name) is not None:
        second = hints[params[1].name]
        if not _is_context(second) and second not in RAW_TYPES:
            raise ConfigError(
                f"function {name!r}: the second parameter {params[1].name!r} is the context; "
                f"annotate it Context or leave it unannotated (it is {second!r})"
            )
    return (
        hints.get(params[0].name, inspect.Parameter.empty),
        len(params) == 2,
        hints.get("return", inspect.Parameter.empty),
    )


#: Parameter names that say "the context" (a handler that takes it first is in the wrong order).
_CONTEXT_NAMES = ("ctx", "context")


def _is_context(tp: Any) -> bool:
    """``tp`` is eventrouter's ``Context`` (by name: this module must not import it) or
    Powertools' / Lambda's ``LambdaContext``."""
    return getattr(tp, "__name__", None) in ("Context", "LambdaContext")


def decoder_for(tp: Any, name: str) -> msgspec.json.Decoder[Any]:
    if tp in RAW_TYPES:
        return msgspec.json.Decoder()
    try:
        # A class msgspec does not know would be accepted here and fail every decode;
        # generating its JSON schema refuses it now, at registration.
        msgspec.json.schema(tp)
        return msgspec.json.Decoder(tp)
    except TypeError as exc:
        raise ConfigError(
            f"function {name!r}: the payload type {tp!r} cannot be decoded by msgspec: {exc}"
        ) from exc


HandlerForm = Literal["raw", "batch", "record"]


def handler_form(tp: Any) -> tuple[HandlerForm, Any]:
    """How a handler whose first parameter is annotated ``tp`` takes its event.

    ``"raw"`` (unannotated, ``Any``, ``dict``...): the source's own event, as Lambda sends it;
    ``"batch"`` (``list[T]``): a list, with ``T`` returned as the item type; ``"record"``
    (``T``): one item at a time.
    """
    origin = typing.get_origin(tp)
    if tp in RAW_TYPES or origin is dict:
        return "raw", None
    if tp is list or origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return "batch", item
    return "record", tp


def decode_integral_floats(
    decoder: msgspec.json.Decoder[Any], data: bytes, error: msgspec.ValidationError
) -> Any:
    """``decoder.decode(data)`` once it failed with ``error``: when that is an integral float
    (``673.0``) where an ``int`` goes, decoded again with such floats as ints (JSON Schema's
    ``integer``, what the OpenAPI document publishes, admits them, so the HTTP routes and the
    Invoke API do too); else ``error`` is raised again. Only the error path pays for this."""
    if not str(error).startswith("Expected `int`, got `float`"):
        raise error
    return msgspec.convert(_integral(msgspec.json.decode(data)), decoder.type)


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value
