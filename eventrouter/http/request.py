"""The request as a handler sees it (``ctx.http``) and API Gateway's 2.0 event."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from eventrouter.arns import ACCOUNT

if TYPE_CHECKING:
    from eventrouter.security.policy import Principal


class HttpRequest:
    """``ctx.http``: method, path, path parameters, query and headers of the request.

    Headers are lower-cased; a header or query parameter given several times is joined with
    commas, as API Gateway does. Everything but the body and path parameters is read from
    the ASGI scope when first asked for.
    """

    __slots__ = (
        "_headers",
        "_query",
        "_scope",
        "auth",
        "body",
        "path_params",
        "principal",
        "route",
    )

    def __init__(self, scope: Any, path_params: dict[str, str], body: bytes, route: str) -> None:
        self._scope = scope
        self.path_params = path_params
        self.body = body
        self.route = route
        self._headers: dict[str, str] | None = None
        self._query: dict[str, str] | None = None
        #: The route's ``auth`` and, when permissions are enforced, the authenticated caller.
        self.auth = "NONE"
        self.principal: Principal | None = None

    @property
    def method(self) -> str:
        return str(self._scope["method"])

    @property
    def path(self) -> str:
        return str(self._scope["path"])

    @property
    def raw_query(self) -> bytes:
        return bytes(self._scope["query_string"])

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return list(self._scope["headers"])

    @property
    def http_version(self) -> str:
        return str(self._scope.get("http_version", "1.1"))

    @property
    def source_ip(self) -> str:
        client = self._scope.get("client")
        return str(client[0]) if client else ""

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            headers: dict[str, str] = {}
            for key, value in self._scope["headers"]:
                name = key.decode("latin-1").lower()
                text = value.decode("latin-1")
                headers[name] = f"{headers[name]},{text}" if name in headers else text
            self._headers = headers
        return self._headers

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            query: dict[str, str] = {}
            for key, value in parse_qsl(self.raw_query.decode("latin-1"), keep_blank_values=True):
                query[key] = f"{query[key]},{value}" if key in query else value
            self._query = query
        return self._query

    def __repr__(self) -> str:
        return f"HttpRequest({self.method} {self.path})"


_time_cache: tuple[int, str] = (-1, "")


def _request_time(second: int) -> str:
    """API Gateway's ``requestContext.time`` (``12/Mar/2020:19:03:58 +0000``), once a second."""
    global _time_cache
    if _time_cache[0] != second:
        text = datetime.fromtimestamp(second, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
        _time_cache = (second, text)
    return _time_cache[1]


_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def is_text(content_type: str) -> bool:
    return content_type.startswith(_TEXT_TYPES) or "+json" in content_type or "+xml" in content_type


_domains: dict[str, tuple[str, str]] = {}


def _domain(host: str) -> tuple[str, str]:
    """``requestContext.domainName`` and ``domainPrefix`` for a ``Host`` header (cached)."""
    known = _domains.get(host)
    if known is None:
        domain = host.rsplit(":", 1)[0] or "localhost"
        known = (domain, domain.split(".", 1)[0])
        if len(_domains) < 1024:
            _domains[host] = known
    return known


def http_event(request: HttpRequest, request_id: str) -> dict[str, Any]:
    """API Gateway's HTTP API payload 2.0 for ``request`` (every request's path for a raw
    handler: read from the scope directly, the constant parts cached)."""
    scope = request._scope
    headers = request.headers
    cookies = headers.pop("cookie", None)
    body: str | None = None
    is_base64 = False
    raw_body = request.body
    if raw_body:
        if is_text(headers.get("content-type", "")):
            try:
                body = raw_body.decode()
            except UnicodeDecodeError:
                body, is_base64 = base64.b64encode(raw_body).decode(), True
        else:
            body, is_base64 = base64.b64encode(raw_body).decode(), True
    now = time.time()
    method: str = scope["method"]
    path: str = scope["path"]
    route_key = f"{method} {request.route}"
    domain, prefix = _domain(headers.get("host", "localhost"))
    raw_query: bytes = scope["query_string"]
    client = scope.get("client")
    version: str = scope.get("http_version", "1.1")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query.decode("latin-1"),
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "eventrouter",
            "domainName": domain,
            "domainPrefix": prefix,
            "http": {
                "method": method,
                "path": path,
                "protocol": _PROTOCOLS.get(version) or f"HTTP/{version}",
                "sourceIp": str(client[0]) if client else "",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": _request_time(int(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if request.principal is not None:
        authorizer = _authorizer(request)
        if authorizer is not None:
            event["requestContext"]["authorizer"] = authorizer
    if cookies:
        event["cookies"] = [c.strip() for c in cookies.split(";")]
    if raw_query:
        event["queryStringParameters"] = request.query
    if request.path_params:
        event["pathParameters"] = request.path_params
    if body is not None:
        event["body"] = body
    return event


_PROTOCOLS = {"1.0": "HTTP/1.0", "1.1": "HTTP/1.1", "2": "HTTP/2", "2.0": "HTTP/2.0"}


def _authorizer(request: HttpRequest) -> dict[str, Any] | None:
    """``requestContext.authorizer``: the IAM caller of an ``AWS_IAM`` route, or what an
    ``API_KEY`` route's key stands for (as a Lambda authorizer's context)."""
    principal = request.principal
    if principal is None or principal.kind != "AWS":
        return None
    if request.auth == "AWS_IAM":
        account = principal.account or ACCOUNT
        return {
            "iam": {
                "accessKey": None,
                "accountId": account,
                "callerId": principal.id,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": principal.id,
                "userId": principal.id,
            }
        }
    return {"lambda": {"principal": principal.id}}
