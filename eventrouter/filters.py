"""Event filtering with EventBridge's pattern syntax (lambda-semantics.md §8).

A pattern is a JSON object whose leaves are lists of allowed values or operators::

    {"value": {"device": ["phone", "tablet"],              # OR over values
               "price": [{"numeric": [">", 0, "<=", 10]}],
               "sku": [{"prefix": "A-"}],
               "state": [{"anything-but": ["cancelled"]}],
               "coupon": [{"exists": false}],
               "note": [null, ""]}}

Keys are ANDed, the values of a list ORed; a field holding an array matches if any element
does; a missing field matches only ``{"exists": false}``. A record passes when any of the
(at most five) patterns matches. Patterns are checked when they are built: a malformed one
raises ``ConfigError`` with the path of the bad element.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from eventrouter.errors import ConfigError

MAX_FILTERS = 5
_MISSING = object()
_NUMERIC_OPS = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}

Matcher = Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equals(expected: Any) -> Matcher:
    if _is_number(expected):
        return lambda v: _is_number(v) and v == expected
    if expected is None:
        return lambda v: v is None
    return lambda v: type(v) is type(expected) and v == expected


def _operator(spec: dict[str, Any], path: str) -> Matcher:
    if len(spec) != 1:
        raise ConfigError(f"filter {path}: an operator object has exactly one key, got {spec!r}")
    ((op, arg),) = spec.items()
    if op == "prefix" or op == "suffix":
        if not isinstance(arg, str):
            raise ConfigError(f"filter {path}.{op}: takes a string, got {arg!r}")
        if op == "prefix":
            return lambda v: isinstance(v, str) and v.startswith(arg)
        return lambda v: isinstance(v, str) and v.endswith(arg)
    if op == "equals-ignore-case":
        if not isinstance(arg, str):
            raise ConfigError(f"filter {path}.{op}: takes a string, got {arg!r}")
        folded = arg.casefold()
        return lambda v: isinstance(v, str) and v.casefold() == folded
    if op == "anything-but":
        if isinstance(arg, dict):
            inner = _operator(arg, f"{path}.anything-but")
            return lambda v: v is not _MISSING and not inner(v)
        values = arg if isinstance(arg, list) else [arg]
        for i, value in enumerate(values):
            if isinstance(value, (dict, list)):
                raise ConfigError(f"filter {path}.anything-but[{i}]: takes values, got {value!r}")
        matchers = [_equals(value) for value in values]
        return lambda v: v is not _MISSING and not any(m(v) for m in matchers)
    if op == "numeric":
        if not isinstance(arg, list) or not arg or len(arg) % 2:
            raise ConfigError(f"filter {path}.numeric: takes [op, number, ...], got {arg!r}")
        checks: list[tuple[Callable[[Any, Any], bool], float]] = []
        for i in range(0, len(arg), 2):
            name, bound = arg[i], arg[i + 1]
            if name not in _NUMERIC_OPS or not _is_number(bound):
                raise ConfigError(
                    f"filter {path}.numeric[{i}]: {name!r} {bound!r} is not one of "
                    f"{', '.join(_NUMERIC_OPS)} followed by a number"
                )
            checks.append((_NUMERIC_OPS[name], bound))
        return lambda v: _is_number(v) and all(check(v, bound) for check, bound in checks)
    if op == "exists":
        if not isinstance(arg, bool):
            raise ConfigError(f"filter {path}.exists: takes true or false, got {arg!r}")
        return (lambda v: v is not _MISSING) if arg else (lambda v: v is _MISSING)
    raise ConfigError(
        f"filter {path}: unknown operator {op!r}; use prefix, suffix, equals-ignore-case, "
        "anything-but, numeric or exists"
    )


def _leaf(values: Any, path: str) -> Matcher:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"filter {path}: a leaf is a non-empty list of values, got {values!r}")
    matchers: list[Matcher] = []
    exists_false = False
    for i, value in enumerate(values):
        if isinstance(value, dict):
            matchers.append(_operator(value, f"{path}[{i}]"))
            exists_false = exists_false or value == {"exists": False}
        elif isinstance(value, list):
            raise ConfigError(f"filter {path}[{i}]: nested lists are not allowed")
        else:
            matchers.append(_equals(value))

    def match(field: Any) -> bool:
        if field is _MISSING:
            return exists_false
        candidates = field if isinstance(field, list) else [field]
        # {"exists": true} on an empty array: EventBridge treats it as absent.
        return any(m(c) for c in candidates for m in matchers)

    return match


def _compile(pattern: Any, path: str) -> Matcher:
    if not isinstance(pattern, dict) or not pattern:
        raise ConfigError(f"filter {path}: a pattern is a non-empty JSON object, got {pattern!r}")
    parts: list[tuple[str, Matcher]] = []
    for key, value in pattern.items():
        sub = f"{path}.{key}"
        parts.append((key, _compile(value, sub) if isinstance(value, dict) else _leaf(value, sub)))

    def match(event: Any) -> bool:
        if not isinstance(event, dict):
            # An object pattern against a missing or non-object field: only exists:false parts
            # can hold, and only when the field is missing altogether.
            return all(m(_MISSING) for _, m in parts) if event is _MISSING else False
        return all(m(event.get(key, _MISSING)) for key, m in parts)

    return match


def compile_pattern(pattern: Any, name: str = "pattern") -> Matcher:
    """One EventBridge pattern, compiled (``ConfigError`` naming the bad element)."""
    return _compile(pattern, name)


class Filters:
    """Compiled filter patterns; ``Filters(patterns).match(event)`` is true if any matches.

    >>> Filters([{"value": {"kind": ["click"]}}]).match({"value": {"kind": "click"}})
    True
    """

    def __init__(self, patterns: Sequence[dict[str, Any]]) -> None:
        if len(patterns) > MAX_FILTERS:
            raise ConfigError(f"filters: at most {MAX_FILTERS} patterns, got {len(patterns)}")
        self.patterns = list(patterns)
        self._matchers = [_compile(p, f"[{i}]") for i, p in enumerate(patterns)]

    def __bool__(self) -> bool:
        return bool(self._matchers)

    def match(self, event: Any) -> bool:
        return any(m(event) for m in self._matchers)


def compiled(source: Any) -> Filters:
    """``source.filters`` compiled once and kept on the (frozen, ``dict=True``) source."""
    cached: Filters | None = source.__dict__.get("_filters")
    if cached is None:
        cached = Filters(source.filters)
        source.__dict__["_filters"] = cached
    return cached


_json = msgspec.json.Decoder()


def maybe_json(data: bytes | str | None) -> Any:
    """What a filter pattern sees of a key, value or body: its JSON if it parses, else text."""
    if data is None:
        return None
    try:
        return _json.decode(data)
    except msgspec.DecodeError:
        return data if isinstance(data, str) else data.decode("utf-8", "replace")
