r"""Lambda's control plane, read side, on the router's HTTP port (REST paths as botocore's
model has them), so the AWS SDKs can look at a running router:

- ``ListFunctions`` — ``GET /2015-03-31/functions/`` (``Marker`` / ``MaxItems`` pagination)
- ``GetFunction`` — ``GET /2015-03-31/functions/{name}``
- ``GetFunctionConfiguration`` — ``GET /2015-03-31/functions/{name}/configuration``
- ``GetPolicy`` — ``GET /2015-03-31/functions/{name}/policy`` (the resource policy: its
  document's statements and the ``Permission``\ s, as written)
- ``GetFunctionConcurrency`` — ``GET /2019-09-30/functions/{name}/concurrency``
- ``GetAccountSettings`` — ``GET /2016-08-19/account-settings/``
- ``PutFunctionConcurrency`` / ``DeleteFunctionConcurrency`` —
  ``PUT`` / ``DELETE /2017-10-31/functions/{name}/concurrency``: applied at once, kept in the
  state dir (``eventrouter/control.py``); deleting returns to what the code sets

Functions stay defined in code: this is what the code set. Errors are Lambda's
(``ResourceNotFoundException``, ``InvalidParameterValueException``), so botocore raises its
own classes. Under enforced permissions these answer ``AccessDeniedException``: checking
Lambda's IAM actions for them is not built yet.
"""

from __future__ import annotations

import base64
import hashlib
import math
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import msgspec

from eventrouter.arns import LATEST, function_arn, role_arn
from eventrouter.errors import ConfigError
from eventrouter.events import new_request_id
from eventrouter.http.asgi import JSON, Receive, Scope, Send, aws_error, read_body, respond
from eventrouter.http.invoke_api import function_name

if TYPE_CHECKING:
    from eventrouter.registry import FunctionSpec
    from eventrouter.runtime.interface import Runtime

FUNCTIONS = "/2015-03-31/functions"
CONCURRENCY = "/2019-09-30/functions/"
PUT_CONCURRENCY = "/2017-10-31/functions/"
ACCOUNT_SETTINGS = "/2016-08-19/account-settings"
#: ``ListFunctions`` gives at most this many a page (Lambda's own maximum).
PAGE_LIMIT = 50

_encoder = msgspec.json.Encoder()
_loaded = time.time()


def handles(method: str, path: str) -> bool:
    """Whether ``method path`` is one of the operations here."""
    if path.startswith(PUT_CONCURRENCY):
        return method in ("PUT", "DELETE") and path.endswith("/concurrency")
    if method not in ("GET", "HEAD"):
        return False
    if path.rstrip("/") in (FUNCTIONS, ACCOUNT_SETTINGS):
        return True
    if path.startswith(CONCURRENCY):
        return path.endswith("/concurrency")
    if path.startswith(FUNCTIONS + "/"):
        rest = path[len(FUNCTIONS) + 1 :].rstrip("/")
        return "/" not in rest or rest.endswith(("/configuration", "/policy"))
    return False


async def handle(
    running: Callable[[], Awaitable[Runtime]],
    enforce: bool,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    path: str = scope["path"]
    request_id = new_request_id()

    async def answer(status: int, document: Any) -> None:
        headers = [(b"content-type", JSON), (b"x-amzn-requestid", request_id.encode())]
        body = b"" if document is None else _encoder.encode(document)
        await respond(send, status, body, headers)

    async def error(status: int, error_type: str, message: str) -> None:
        await aws_error(send, status, error_type, message, request_id)

    if enforce:
        await error(
            403,
            "AccessDeniedException",
            "the control-plane operations are not available with enforced permissions",
        )
        return
    runtime = await running()
    functions = runtime.router.functions
    trimmed = path.rstrip("/")
    if trimmed == ACCOUNT_SETTINGS:
        await answer(200, account_settings(runtime))
        return
    if trimmed == FUNCTIONS:
        query = parse_qs(scope["query_string"].decode("latin-1"))
        marker = (query.get("Marker") or [""])[0]
        raw_limit = (query.get("MaxItems") or [str(PAGE_LIMIT)])[0]
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 10_000:
            await error(400, "InvalidParameterValueException", "MaxItems must be 1 to 10000")
            return
        if marker and marker not in functions:
            await error(400, "InvalidParameterValueException", f"Marker {marker!r} is unknown")
            return
        names = sorted(functions)
        start = names.index(marker) if marker else 0
        page = names[start : start + min(int(raw_limit), PAGE_LIMIT)]
        document: dict[str, Any] = {"Functions": [configuration(functions[name]) for name in page]}
        if start + len(page) < len(names):
            document["NextMarker"] = names[start + len(page)]
        await answer(200, document)
        return
    if path.startswith((CONCURRENCY, PUT_CONCURRENCY)):
        prefix = CONCURRENCY if path.startswith(CONCURRENCY) else PUT_CONCURRENCY
        name = unquote(path[len(prefix) : -len("/concurrency")])
    else:
        name = unquote(trimmed[len(FUNCTIONS) + 1 :].removesuffix("/configuration"))
        name = name.removesuffix("/policy")
    name, _ = function_name(name, None)  # a name, a partial or a full ARN, as Invoke takes
    spec = functions.get(name)
    if spec is None:
        await error(404, "ResourceNotFoundException", f"Function not found: {function_arn(name)}")
        return
    if path.startswith(PUT_CONCURRENCY):
        await change_concurrency(runtime, name, scope, receive, answer, error)
        return
    reserved = runtime.slots.functions[name].reserved
    if path.startswith(CONCURRENCY):
        await answer(200, {} if reserved is None else {"ReservedConcurrentExecutions": reserved})
    elif trimmed.endswith("/configuration"):
        await answer(200, configuration(spec))
    elif trimmed.endswith("/policy"):
        if spec.resource_policy is None:
            message = "The resource you requested does not exist."
            await error(404, "ResourceNotFoundException", message)
            return
        text = _encoder.encode(
            {
                "Version": "2012-10-17",
                "Id": "default",
                "Statement": [s.document for s in spec.resource_policy.statements],
            }
        ).decode()
        revision = hashlib.sha256(text.encode()).hexdigest()[:32]
        await answer(200, {"Policy": text, "RevisionId": revision})
    else:
        document = {
            "Configuration": configuration(spec),
            "Code": {"RepositoryType": "S3", "Location": ""},
        }
        if reserved is not None:
            document["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        await answer(200, document)


async def change_concurrency(
    runtime: Runtime,
    name: str,
    scope: Scope,
    receive: Receive,
    answer: Callable[[int, Any], Awaitable[None]],
    error: Callable[[int, str, str], Awaitable[None]],
) -> None:
    """``PutFunctionConcurrency`` (PUT, ``{"ReservedConcurrentExecutions": n}``) or
    ``DeleteFunctionConcurrency`` (DELETE: 204, back to what the code sets)."""
    if scope["method"] == "DELETE":
        runtime.set_concurrency(name, None)
        await answer(204, None)
        return
    body = await read_body(receive, 64 * 1024)
    try:
        value = msgspec.json.decode(body or b"{}").get("ReservedConcurrentExecutions")
    except (msgspec.DecodeError, AttributeError):
        value = None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        await error(
            400,
            "InvalidParameterValueException",
            "ReservedConcurrentExecutions must be a whole number, 0 or more",
        )
        return
    try:
        runtime.set_concurrency(name, value)
    except ConfigError as exc:
        await error(400, "InvalidParameterValueException", str(exc))
        return
    await answer(200, {"ReservedConcurrentExecutions": value})


def configuration(spec: FunctionSpec) -> dict[str, Any]:
    """``FunctionConfiguration`` of one function, as Lambda returns it."""
    settings = spec.settings
    handler = (
        " ".join(spec.command)
        if spec.command is not None
        else f"{spec.module}.{getattr(spec.handler, '__name__', spec.name)}"
    )
    digest = hashlib.sha256(f"{handler}|{settings!r}".encode()).digest()
    document: dict[str, Any] = {
        "FunctionName": spec.name,
        "FunctionArn": function_arn(spec.name),
        "Role": role_arn(spec.name),
        "Handler": handler,
        "CodeSize": 0,
        "Description": "",
        "Timeout": math.ceil(settings.timeout),
        "MemorySize": settings.memory_mb,
        "LastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(_loaded)),
        "CodeSha256": base64.b64encode(digest).decode(),
        "Version": LATEST,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": digest[:16].hex(),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["arm64" if platform.machine() in ("arm64", "aarch64") else "x86_64"],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": settings.log_format, "LogGroup": f"/aws/lambda/{spec.name}"},
    }
    if spec.command is None:
        document["Runtime"] = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return document


def account_settings(runtime: Runtime) -> dict[str, Any]:
    slots = runtime.slots
    return {
        "AccountLimit": {
            "TotalCodeSize": 80_530_636_800,
            "CodeSizeUnzipped": 262_144_000,
            "CodeSizeZipped": 52_428_800,
            "ConcurrentExecutions": slots.max_concurrency,
            "UnreservedConcurrentExecutions": slots.pool,
        },
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": len(runtime.router.functions)},
    }
