"""eventrouter with a no-op SNS HTTP subscription endpoint (signatures checked; certificates
from ``SNS_CERT_ENDPOINT``) and the same no-op behind the Invoke API (``Event``), for the
notifications benchmark."""

import os
from typing import Any

from eventrouter import Http, Router, Sns

TOPIC = "arn:aws:sns:us-east-1:123456789012:bench"
router = Router("bench-sns")


@router.on_event(
    Sns(TOPIC, delivery="http", signing_cert_endpoint=os.environ.get("SNS_CERT_ENDPOINT"))
)
async def notified(event: Any) -> None:
    return None


@router.on_event()
async def noop(event: Any) -> None:
    return None


@router.on_event(Http("GET /noop"))
async def ready(event: Any) -> dict[str, bool]:
    return {"ok": True}
