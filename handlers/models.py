"""Payload types: msgspec decodes and validates them."""

from typing import Annotated

import msgspec

#: Bounded so that a total is always a finite number (an unbounded float can overflow to
#: infinity, which JSON cannot carry).
Quantity = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
Price = Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]
#: An order id is a path segment of ``GET /orders/{order_id}``: never empty.
OrderId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern="^[^/]+$")]


class Item(msgspec.Struct, frozen=True):
    sku: str
    quantity: Quantity
    unit_price: Price


class Order(msgspec.Struct, frozen=True):
    order_id: OrderId
    email: str
    items: list[Item]


class Receipt(msgspec.Struct, frozen=True):
    order_id: str
    email: str
    total: float
