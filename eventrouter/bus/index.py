"""Rules indexed by the fields their patterns name, so matching does not scan every rule.

Each rule whose pattern asks for exact values somewhere (``"source": ["shop"]``) is filed
under one such field: the one most rules of the bus can be filed under, so an event is looked
up in few tables. An event then costs one dictionary look-up per indexed field plus the full
match of the few rules found; only rules with no exact value anywhere (``prefix`` only,
``anything-but``...) are tried on every event. (AWS's own matcher, event-ruler, compiles
patterns into one state machine for the same reason.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar

from eventrouter.filters import Matcher

T = TypeVar("T")
Path = tuple[str, ...]
_MISSING = object()


def exact_fields(pattern: dict[str, Any], prefix: Path = ()) -> dict[Path, list[Hashable]]:
    """The fields of ``pattern`` whose leaf lists are plain values only, with those values."""
    out: dict[Path, list[Hashable]] = {}
    for key, value in pattern.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            out.update(exact_fields(value, path))
        elif (
            isinstance(value, list)
            and value
            and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value)
        ):
            out[path] = list(value)
    return out


def _get(event: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(event, dict):
            return _MISSING
        event = event.get(key, _MISSING)
        if event is _MISSING:
            return _MISSING
    return event


class RuleIndex(Generic[T]):
    """``RuleIndex([(pattern, matcher, item), ...]).match(event)``: the items whose pattern
    matches, in registration order."""

    def __init__(self, rules: Iterable[tuple[dict[str, Any], Matcher, T]]) -> None:
        entries = list(rules)
        fields = [exact_fields(pattern) for pattern, _, _ in entries]
        popularity = Counter(path for f in fields for path in f)
        self.tables: dict[Path, dict[Hashable, list[int]]] = {}
        self.scan: list[int] = []
        self.matchers = [matcher for _, matcher, _ in entries]
        self.items = [item for _, _, item in entries]
        for i, f in enumerate(fields):
            if not f:
                self.scan.append(i)
                continue
            path = max(f, key=lambda p: (popularity[p], -len(p), p))
            table = self.tables.setdefault(path, {})
            for value in dict.fromkeys(f[path]):
                table.setdefault(value, []).append(i)

    def __len__(self) -> int:
        return len(self.items)

    def match(self, event: dict[str, Any]) -> list[T]:
        found: list[int] = list(self.scan)
        lists = 1 if found else 0
        for path, table in self.tables.items():
            value = _get(event, path)
            if value is _MISSING:
                continue
            for v in value if isinstance(value, list) else (value,):
                try:
                    hits = table.get(v)
                except TypeError:  # an unhashable value (an object) equals no plain value
                    continue
                if hits:
                    found.extend(hits)
                    lists += 1
        if lists > 1:  # several look-ups: in registration order, each rule once
            found = sorted(set(found))
        matchers, items = self.matchers, self.items
        return [items[i] for i in found if matchers[i](event)]
