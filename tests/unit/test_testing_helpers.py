"""The testing conveniences a user's own tests lean on: HTTP clients bound to a router (in
process on the ASGI app, and through the real server), ``directory()`` and
``wait_invocations`` for targets nobody calls; ``Response.json``."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from eventrouter import EventRule, Http, Response, Router, to_directory
from eventrouter.testing import TestRouter, run_router


class Order(msgspec.Struct):
    id: str


def shop() -> Router:
    router = Router("shop")

    @router.on_event(Http("POST /orders"))
    async def create(order: Order) -> Response:
        await router.put_events(
            [{"Source": "shop", "DetailType": "order.placed", "Detail": f'{{"id":"{order.id}"}}'}]
        )
        return Response.json(
            {"id": order.id}, status=201, headers={"location": f"/orders/{order.id}"}
        )

    @router.on_event(
        EventRule(pattern={"source": ["shop"]}), max_retries=0, on_failure=to_directory("out")
    )
    async def reserve_stock(event: dict[str, Any]) -> None:
        if event["detail"]["id"] == "bad":
            raise ValueError("no stock")

    return router


def test_sync_clients_directory_and_waiting_for_a_rules_target() -> None:
    with TestRouter(shop(), http="127.0.0.1:0") as app:
        with app.client() as client:  # in process, on the ASGI app
            created = client.post("/orders", json={"id": "o-1"})
            assert created.status_code == 201 and created.json() == {"id": "o-1"}
            assert created.headers["location"] == "/orders/o-1"
            assert created.headers["content-type"] == "application/json"
        assert app.wait_invocations("reserve_stock", 1) == 1
        with app.server_client() as client:  # through the real server
            assert client.post("/orders", json={"id": "bad"}).status_code == 201
        assert app.wait_invocations("reserve_stock", 2) == 2
        record = app.next_record("reserve_stock", "on_failure")
        assert record["responsePayload"]["errorMessage"] == "no stock"
        assert list(app.directory("out").glob("*.json"))  # on_failure wrote there
        with pytest.raises(TimeoutError, match="reserve_stock ran 2 of 3"):
            app.wait_invocations("reserve_stock", 3, timeout=0.2)


@pytest.mark.anyio
async def test_async_client_on_the_asgi_app() -> None:
    async with run_router(shop()) as app, app.client() as client:
        created = await client.post("/orders", json={"id": "o-2"})
        assert created.status_code == 201
        assert await app.wait_invocations("reserve_stock") == 1
        assert (await client.post("/orders", json={"nope": 1})).status_code == 400
