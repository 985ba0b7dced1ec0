"""Every operator of EventBridge's pattern syntax (lambda-semantics.md §8)."""

from __future__ import annotations

from typing import Any

import pytest

from eventrouter import ConfigError
from eventrouter.filters import Filters


def passes(pattern: dict[str, Any], event: Any) -> bool:
    return Filters([pattern]).match(event)


def test_exact_values_or_over_values_and_over_keys() -> None:
    p = {"kind": ["click", "view"], "n": [3]}
    assert passes(p, {"kind": "click", "n": 3})
    assert passes(p, {"kind": "view", "n": 3.0})
    assert not passes(p, {"kind": "buy", "n": 3})
    assert not passes(p, {"kind": "click", "n": 4})
    assert not passes(p, {"kind": "click"})  # AND: n is missing
    assert not passes({"n": [3]}, {"n": "3"})  # types matter
    assert not passes({"flag": [True]}, {"flag": 1})


def test_nested_objects_and_arrays() -> None:
    p = {"value": {"user": {"tier": ["gold"]}}}
    assert passes(p, {"value": {"user": {"tier": "gold"}}})
    assert not passes(p, {"value": {"user": "gold"}})
    assert passes({"tags": ["a"]}, {"tags": ["x", "a"]})  # any element of an array
    assert not passes({"tags": ["a"]}, {"tags": []})


def test_prefix_suffix_and_case() -> None:
    assert passes({"sku": [{"prefix": "A-"}]}, {"sku": "A-1"})
    assert not passes({"sku": [{"prefix": "A-"}]}, {"sku": "B-1"})
    assert not passes({"sku": [{"prefix": "1"}]}, {"sku": 12})
    assert passes({"f": [{"suffix": ".png"}]}, {"f": "a.png"})
    assert passes({"c": [{"equals-ignore-case": "EU"}]}, {"c": "eu"})


def test_anything_but() -> None:
    p = {"state": [{"anything-but": ["cancelled", "void"]}]}
    assert passes(p, {"state": "open"})
    assert not passes(p, {"state": "void"})
    assert not passes(p, {})  # anything-but needs the field
    assert passes({"n": [{"anything-but": 0}]}, {"n": 1})
    assert not passes({"n": [{"anything-but": 0}]}, {"n": 0})
    assert passes({"s": [{"anything-but": {"prefix": "tmp"}}]}, {"s": "real"})
    assert not passes({"s": [{"anything-but": {"prefix": "tmp"}}]}, {"s": "tmp1"})


def test_numeric() -> None:
    p = {"price": [{"numeric": [">", 0, "<=", 10]}]}
    assert passes(p, {"price": 10})
    assert passes(p, {"price": 0.5})
    assert not passes(p, {"price": 0})
    assert not passes(p, {"price": 11})
    assert not passes(p, {"price": "5"})
    assert not passes(p, {"price": True})
    assert passes({"x": [{"numeric": ["=", 3]}]}, {"x": 3.0})
    assert passes({"x": [{"numeric": [">=", 3, "<", 4]}]}, {"x": 3})


def test_exists() -> None:
    assert passes({"coupon": [{"exists": True}]}, {"coupon": None})
    assert not passes({"coupon": [{"exists": True}]}, {})
    assert passes({"coupon": [{"exists": False}]}, {})
    assert not passes({"coupon": [{"exists": False}]}, {"coupon": "x"})
    assert passes({"a": {"b": [{"exists": False}]}}, {})


def test_null_and_empty_string() -> None:
    assert passes({"note": [None]}, {"note": None})
    assert not passes({"note": [None]}, {})
    assert not passes({"note": [None]}, {"note": ""})
    assert passes({"note": [""]}, {"note": ""})
    assert not passes({"note": [""]}, {"note": None})


def test_any_filter_passes_and_empty_filters() -> None:
    filters = Filters([{"k": ["a"]}, {"k": ["b"]}])
    assert filters.match({"k": "b"}) and not filters.match({"k": "c"})
    assert not Filters([])  # no filters: a source skips filtering altogether


@pytest.mark.parametrize(
    ("pattern", "where"),
    [
        ({}, "[0]"),
        ({"k": "a"}, "[0].k"),
        ({"k": []}, "[0].k"),
        ({"k": [["a"]]}, "[0].k[0]"),
        ({"k": [{"prefix": 1}]}, "[0].k[0].prefix"),
        ({"k": [{"numeric": [">", "x"]}]}, "[0].k[0].numeric"),
        ({"k": [{"numeric": [">"]}]}, "[0].k[0].numeric"),
        ({"k": [{"exists": "yes"}]}, "[0].k[0].exists"),
        ({"k": [{"wildcard": "*"}]}, "[0].k[0]"),
        ({"k": [{"prefix": "a", "suffix": "b"}]}, "[0].k[0]"),
        ({"a": {"b": [{"anything-but": [{"x": 1}]}]}}, "[0].a.b[0].anything-but[0]"),
    ],
)
def test_malformed_patterns_name_the_element(pattern: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        Filters([pattern])
    assert f"filter {where}" in str(info.value)


def test_at_most_five_filters() -> None:
    with pytest.raises(ConfigError, match="at most 5"):
        Filters([{"k": [i]} for i in range(6)])
