from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from eventrouter.observability.logging import configure_logging, flush_logs


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def log_records() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Route structlog to JSON lines in memory; call the fixture's value to read them."""
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)

    def read() -> list[dict[str, Any]]:
        flush_logs()
        return [msgspec.json.decode(line) for line in stream.getvalue().splitlines() if line]

    yield read
    configure_logging("json", "info", stream=io.StringIO())


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    configure_logging("json", "info", stream=io.StringIO())


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of the session's Kafka-protocol broker."""
    from tests.kafka_broker import kafka_broker

    with kafka_broker(tmp_path_factory.mktemp("kafka") / "broker.log") as servers:
        yield servers


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Endpoint URL of a moto server started for the session."""
    from tests.aws_server import start_moto

    with start_moto(tmp_path_factory.mktemp("moto") / "moto.log") as (endpoint, _, _):
        yield endpoint
