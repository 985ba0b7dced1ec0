"""``/metrics``, ``/dashboard`` and ``/dashboard/data``: what a running router is doing.

On the router's port they are open unless permissions are enforced; then the caller must
sign (SigV4) as one of the router's ``metrics_readers``. ``--metrics HOST:PORT`` serves them
alone on a port of their own, open to whoever reaches it (bind it to loopback or an
internal network).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import structlog

from eventrouter.events import new_request_id
from eventrouter.http.asgi import JSON, Receive, Scope, Send, header, respond
from eventrouter.observability import dashboard
from eventrouter.runtime.readings import take
from eventrouter.security.credentials import principal_for
from eventrouter.security.guard import AuthFailure

if TYPE_CHECKING:
    from eventrouter.runtime.interface import Runtime

log = structlog.get_logger("eventrouter.http")

PATHS = frozenset({"/metrics", "/dashboard", "/dashboard/data"})
_encoder = msgspec.json.Encoder()


def allowed(runtime: Runtime, scope: Scope) -> bool:
    """Whether a caller may read the metrics under enforced permissions: signed (SigV4) by
    one of the router's ``metrics_readers``."""
    try:
        principal = runtime.guard.authenticate(scope, b"", "AWS_IAM")
    except AuthFailure as exc:
        log.info("metrics caller refused", reason=exc.code)
        return False
    readers = {principal_for(name).id for name in runtime.router.metrics_readers}
    if principal.id not in readers:
        log.info("metrics caller refused", principal=principal.id)
        return False
    return True


async def handle(runtime: Runtime, path: str, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a GET or HEAD of one of :data:`PATHS` (the caller was checked already)."""
    request_id = new_request_id().encode()
    if path == "/metrics":
        accept = (header(scope, b"accept") or b"").decode("latin-1")
        from eventrouter.observability import exposition  # prometheus_client: on first scrape

        body, content_type = exposition.render(await take(runtime), accept)
        headers = [(b"content-type", content_type.encode())]
    elif path == "/dashboard":
        body = dashboard.page()
        headers = [(b"content-type", b"text/html; charset=utf-8")]
    else:
        history = runtime.history
        readings = await history.now()
        body = _encoder.encode(
            dashboard.data(readings, history.started, runtime.metrics, runtime.usage)
        )
        headers = [(b"content-type", JSON)]
    headers += [(b"cache-control", b"no-store"), (b"x-amzn-requestid", request_id)]
    await respond(send, 200, body, headers)
