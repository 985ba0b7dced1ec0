"""Payload types: msgspec decodes and validates them."""

from typing import Annotated

import msgspec

#: Bounded so that a total is always a finite number (an unbounded float can overflow to
#: infinity, which JSON cannot carry).
Quantity = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
Price = Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]


class Item(msgspec.Struct, frozen=True):
    sku: str
    quantity: Quantity
    unit_price: Price


class Order(msgspec.Struct, frozen=True):
    order_id: str
    email: str
    items: list[Item]


class Receipt(msgspec.Struct, frozen=True):
    order_id: str
    email: str
    total: float
