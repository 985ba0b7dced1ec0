"""Payload types: msgspec decodes and validates them."""

import msgspec


class Item(msgspec.Struct, frozen=True):
    sku: str
    quantity: int
    unit_price: float


class Order(msgspec.Struct, frozen=True):
    order_id: str
    email: str
    items: list[Item]


class Receipt(msgspec.Struct, frozen=True):
    order_id: str
    email: str
    total: float
