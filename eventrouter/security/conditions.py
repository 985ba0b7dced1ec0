"""IAM condition operators: ``{"StringLike": {"aws:SourceArn": ["arn:...:*"]}}``.

Every operator of IAM's list (String, Numeric, Date, Bool, Binary, IpAddress, Arn, Null),
with the ``...IfExists`` suffix and the ``ForAnyValue:`` / ``ForAllValues:`` set qualifiers.
Policy values are checked when the document is parsed, so a bad date or CIDR is a start-up
error naming its path, not a silent false at request time.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from eventrouter.errors import PolicyError

_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def parse_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_date(value: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 date/time or an epoch number; ``None`` if neither."""
    if _NUMBER.fullmatch(value):
        return float(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _ip(value: str) -> Any:
    return ipaddress.ip_network(value, strict=False)


@lru_cache(maxsize=4096)
def wildcard(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """``*`` (any run of characters) and ``?`` (one character) as a full-match expression."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return wildcard(pattern, ignore_case).fullmatch(value) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """IAM's ARN match: ``"*"``, or each of the six ``:``-separated segments on its own
    (a wildcard does not reach across a ``:`` between segments; the last one takes the rest)."""
    if pattern == "*":
        return True
    want = pattern.split(":", 5)
    have = arn.split(":", 5)
    return len(want) == len(have) == 6 and all(
        matches(w, h) for w, h in zip(want, have, strict=True)
    )


def _wild(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return matches(pattern, value, ignore_case)


def _arn_like(pattern: str, value: str) -> bool:
    return pattern != "*" and arn_matches(pattern, value)


def _compare(parse: Callable[[str], float | None], op: Callable[[float, float], bool]) -> Any:
    def test(context: str, prepared: Any) -> bool:
        value = parse(context)
        return value is not None and op(value, prepared)

    return test


def _in_network(context: str, network: Any) -> bool:
    try:
        return ipaddress.ip_address(context) in network
    except ValueError:
        return False


_EQ: Callable[[float, float], bool] = lambda a, b: a == b  # noqa: E731
_LT: Callable[[float, float], bool] = lambda a, b: a < b  # noqa: E731
_LE: Callable[[float, float], bool] = lambda a, b: a <= b  # noqa: E731
_GT: Callable[[float, float], bool] = lambda a, b: a > b  # noqa: E731
_GE: Callable[[float, float], bool] = lambda a, b: a >= b  # noqa: E731

#: operator -> (prepare the policy value (raise ValueError if bad), test, negated)
Prepare = Callable[[str], Any]
Test = Callable[[str, Any], bool]


def _checked(parse: Callable[[str], float | None], what: str) -> Prepare:
    def prepare(value: str) -> float:
        parsed = parse(value)
        if parsed is None:
            raise ValueError(f"{value!r} is not {what}")
        return parsed

    return prepare


def _boolean(value: str) -> str:
    if value.lower() not in ("true", "false"):
        raise ValueError(f'{value!r} is not "true" or "false"')
    return value.lower()


def _same(value: str) -> str:
    return value


def _lower(value: str) -> str:
    return value.lower()


_number = _checked(parse_number, "a number")
_date = _checked(parse_date, "an ISO 8601 date or epoch seconds")

OPERATORS: dict[str, tuple[Prepare, Test, bool]] = {
    "StringEquals": (_same, lambda c, v: c == v, False),
    "StringNotEquals": (_same, lambda c, v: c == v, True),
    "StringEqualsIgnoreCase": (_lower, lambda c, v: c.lower() == v, False),
    "StringNotEqualsIgnoreCase": (_lower, lambda c, v: c.lower() == v, True),
    "StringLike": (_same, lambda c, v: _wild(v, c), False),
    "StringNotLike": (_same, lambda c, v: _wild(v, c), True),
    "NumericEquals": (_number, _compare(parse_number, _EQ), False),
    "NumericNotEquals": (_number, _compare(parse_number, _EQ), True),
    "NumericLessThan": (_number, _compare(parse_number, _LT), False),
    "NumericLessThanEquals": (_number, _compare(parse_number, _LE), False),
    "NumericGreaterThan": (_number, _compare(parse_number, _GT), False),
    "NumericGreaterThanEquals": (_number, _compare(parse_number, _GE), False),
    "DateEquals": (_date, _compare(parse_date, _EQ), False),
    "DateNotEquals": (_date, _compare(parse_date, _EQ), True),
    "DateLessThan": (_date, _compare(parse_date, _LT), False),
    "DateLessThanEquals": (_date, _compare(parse_date, _LE), False),
    "DateGreaterThan": (_date, _compare(parse_date, _GT), False),
    "DateGreaterThanEquals": (_date, _compare(parse_date, _GE), False),
    "Bool": (_boolean, lambda c, v: c.lower() == v, False),
    "BinaryEquals": (_same, lambda c, v: c == v, False),
    "IpAddress": (_ip, _in_network, False),
    "NotIpAddress": (_ip, _in_network, True),
    "ArnEquals": (_same, lambda c, v: _arn_like(v, c), False),
    "ArnLike": (_same, lambda c, v: _arn_like(v, c), False),
    "ArnNotEquals": (_same, lambda c, v: _arn_like(v, c), True),
    "ArnNotLike": (_same, lambda c, v: _arn_like(v, c), True),
    "Null": (_boolean, lambda c, v: False, False),  # decided on presence in Condition.holds
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One key under one operator: ``{"StringLike": {"aws:SourceArn": [...]}}``."""

    operator: str
    key: str  # lower case
    values: tuple[Any, ...]
    test: Test
    negated: bool = False
    if_exists: bool = False
    #: ``"any"`` (ForAnyValue), ``"all"`` (ForAllValues) or ``None``.
    quantifier: str | None = None
    null: bool = False

    def holds(self, context: Mapping[str, str | Sequence[str]]) -> bool:
        raw = context.get(self.key)
        present = raw is not None and (isinstance(raw, str) or len(raw) > 0)
        if self.null:
            return any((value == "true") != present for value in self.values)
        if not present:
            if self.quantifier == "all":
                return True
            if self.quantifier == "any":
                return False
            return self.if_exists or self.negated
        assert raw is not None
        given = (raw,) if isinstance(raw, str) else tuple(raw)

        def one(value: str) -> bool:
            hit = any(self.test(value, wanted) for wanted in self.values)
            return hit != self.negated

        if self.quantifier == "all":
            return all(one(v) for v in given)
        return any(one(v) for v in given)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not a string, number or boolean")


def parse_operator(name: str) -> tuple[str, str | None, bool]:
    """``"ForAnyValue:StringLikeIfExists"`` -> ``("StringLike", "any", True)``."""
    quantifier = None
    for prefix, kind in (("ForAnyValue:", "any"), ("ForAllValues:", "all")):
        if name.startswith(prefix):
            name, quantifier = name[len(prefix) :], kind
    if_exists = name.endswith("IfExists") and name != "IfExists"
    base = name[: -len("IfExists")] if if_exists else name
    if base not in OPERATORS or (base == "Null" and (if_exists or quantifier)):
        raise KeyError(base)
    return base, quantifier, if_exists


def parse_condition_block(block: Any, path: str) -> tuple[Condition, ...]:
    """The conditions of a statement's ``Condition`` element (all must hold)."""
    if not isinstance(block, dict):
        raise PolicyError(f"{path}: must be an object of operators")
    conditions: list[Condition] = []
    for operator, keys in block.items():
        where = f"{path}.{operator}"
        try:
            base, quantifier, if_exists = parse_operator(str(operator))
        except KeyError:
            raise PolicyError(f"{where}: unknown condition operator") from None
        if not isinstance(keys, dict) or not keys:
            raise PolicyError(f"{where}: must be an object of condition keys and values")
        prepare, test, negated = OPERATORS[base]
        for key, raw in keys.items():
            at = f"{where}.{key}"
            if not isinstance(key, str) or not key:
                raise PolicyError(f"{at}: a condition key must be a non-empty string")
            items = raw if isinstance(raw, list) else [raw]
            if not items:
                raise PolicyError(f"{at}: needs at least one value")
            try:
                values = tuple(prepare(_text(item)) for item in items)
            except ValueError as exc:
                raise PolicyError(f"{at}: {exc} ({base})") from None
            conditions.append(
                Condition(
                    operator=str(operator),
                    key=key.lower(),
                    values=values,
                    test=test,
                    negated=negated,
                    if_exists=if_exists,
                    quantifier=quantifier,
                    null=base == "Null",
                )
            )
    return tuple(conditions)
