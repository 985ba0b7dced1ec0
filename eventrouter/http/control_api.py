r"""Lambda's control plane on the router's HTTP port (REST paths as botocore's model has
them), so the AWS SDKs and CLI can look at and change a running router:

- functions: ``ListFunctions`` (``Marker`` / ``MaxItems``), ``GetFunction``,
  ``GetFunctionConfiguration``, ``UpdateFunctionConfiguration`` (timeout, memory size, the
  environment of process-isolated functions), ``GetAccountSettings``
- concurrency: ``Get/Put/DeleteFunctionConcurrency``,
  ``Get/Put/DeleteProvisionedConcurrencyConfig`` (any ``Qualifier``: one version here)
- resource policy: ``GetPolicy``, ``AddPermission``, ``RemovePermission`` (``RevisionId``)
- asynchronous invocation: ``Get/Put/Update/Delete/ListFunctionEventInvokeConfig(s)``;
  recursive loops: ``Get/PutFunctionRecursionConfig``
- event source mappings: ``List/GetEventSourceMapping(s)``, ``UpdateEventSourceMapping``
  (``Enabled``, batch size and window)

Functions stay defined in code; changes go through ``control/plane.py`` and
``control/mappings.py`` (applied at once, kept in the state dir). Errors are Lambda's
(``ResourceNotFoundException``, ``InvalidParameterValueException``,
``PreconditionFailedException``, ``ResourceConflictException``), so botocore raises its own
classes. Under enforced permissions each call is SigV4-authenticated and authorised as
Lambda's IAM action (``lambda:GetFunction``...) by the caller's identity policy or the
function's resource policy.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

import msgspec

from eventrouter.arns import event_source_mapping_arn, function_arn
from eventrouter.control.plane import ControlError
from eventrouter.errors import ConfigError
from eventrouter.events import new_request_id
from eventrouter.http.asgi import JSON, Receive, Scope, Send, aws_error, read_body, respond
from eventrouter.http.control_ops import (
    Call,
    Operation,
    add_permission,
    delete_concurrency,
    delete_invoke_config,
    delete_provisioned,
    get_concurrency,
    get_configuration,
    get_function,
    get_invoke_config,
    get_mapping,
    get_policy,
    get_provisioned,
    get_recursion,
    get_settings,
    list_functions,
    list_invoke_configs,
    list_mappings,
    put_concurrency,
    put_invoke_config,
    put_provisioned,
    put_recursion,
    remove_permission,
    update_configuration,
    update_invoke_config,
    update_mapping,
)
from eventrouter.http.invoke_api import function_name
from eventrouter.security.guard import AuthFailure

if TYPE_CHECKING:
    from eventrouter.runtime.interface import Runtime

BODY_LIMIT = 256 * 1024

_encoder = msgspec.json.Encoder()
_FUNCTION = r"(?P<name>[^/]+)"


# -- routing ----------------------------------------------------------------------------------

#: (method, path pattern, IAM action, operation); ``name``: a function, ``uuid``: a mapping.
ROUTES: list[tuple[str, re.Pattern[str], str, Operation]] = [
    (method, re.compile(pattern), f"lambda:{action}", operation)
    for method, pattern, action, operation in [
        ("GET", r"/2015-03-31/functions/?", "ListFunctions", list_functions),
        ("GET", rf"/2015-03-31/functions/{_FUNCTION}/?", "GetFunction", get_function),
        (
            "GET",
            rf"/2015-03-31/functions/{_FUNCTION}/configuration/?",
            "GetFunctionConfiguration",
            get_configuration,
        ),
        (
            "PUT",
            rf"/2015-03-31/functions/{_FUNCTION}/configuration/?",
            "UpdateFunctionConfiguration",
            update_configuration,
        ),
        ("GET", rf"/2015-03-31/functions/{_FUNCTION}/policy/?", "GetPolicy", get_policy),
        ("POST", rf"/2015-03-31/functions/{_FUNCTION}/policy/?", "AddPermission", add_permission),
        (
            "DELETE",
            rf"/2015-03-31/functions/{_FUNCTION}/policy/(?P<sid>[^/]+)",
            "RemovePermission",
            remove_permission,
        ),
        ("GET", r"/2016-08-19/account-settings/?", "GetAccountSettings", get_settings),
        (
            "GET",
            rf"/2019-09-30/functions/{_FUNCTION}/concurrency",
            "GetFunctionConcurrency",
            get_concurrency,
        ),
        (
            "PUT",
            rf"/2017-10-31/functions/{_FUNCTION}/concurrency",
            "PutFunctionConcurrency",
            put_concurrency,
        ),
        (
            "DELETE",
            rf"/2017-10-31/functions/{_FUNCTION}/concurrency",
            "DeleteFunctionConcurrency",
            delete_concurrency,
        ),
        *[
            (method, rf"/2019-09-30/functions/{_FUNCTION}/provisioned-concurrency", action, op)
            for method, action, op in [
                ("GET", "GetProvisionedConcurrencyConfig", get_provisioned),
                ("PUT", "PutProvisionedConcurrencyConfig", put_provisioned),
                ("DELETE", "DeleteProvisionedConcurrencyConfig", delete_provisioned),
            ]
        ],
        *[
            (
                method,
                rf"/2019-09-25/functions/{_FUNCTION}/event-invoke-config",
                action,
                operation,
            )
            for method, action, operation in [
                ("GET", "GetFunctionEventInvokeConfig", get_invoke_config),
                ("PUT", "PutFunctionEventInvokeConfig", put_invoke_config),
                ("POST", "UpdateFunctionEventInvokeConfig", update_invoke_config),
                ("DELETE", "DeleteFunctionEventInvokeConfig", delete_invoke_config),
            ]
        ],
        (
            "GET",
            rf"/2019-09-25/functions/{_FUNCTION}/event-invoke-config/list",
            "ListFunctionEventInvokeConfigs",
            list_invoke_configs,
        ),
        (
            "GET",
            rf"/2024-08-31/functions/{_FUNCTION}/recursion-config",
            "GetFunctionRecursionConfig",
            get_recursion,
        ),
        (
            "PUT",
            rf"/2024-08-31/functions/{_FUNCTION}/recursion-config",
            "PutFunctionRecursionConfig",
            put_recursion,
        ),
        ("GET", r"/2015-03-31/event-source-mappings/?", "ListEventSourceMappings", list_mappings),
        (
            "GET",
            r"/2015-03-31/event-source-mappings/(?P<uuid>[^/]+)",
            "GetEventSourceMapping",
            get_mapping,
        ),
        (
            "PUT",
            r"/2015-03-31/event-source-mappings/(?P<uuid>[^/]+)",
            "UpdateEventSourceMapping",
            update_mapping,
        ),
    ]
]


def route(method: str, path: str) -> tuple[str, Operation, dict[str, str]] | None:
    """The IAM action, operation and path parameters of ``method path``, if it is one here."""
    if method == "HEAD":
        method = "GET"
    for wanted, pattern, action, operation in ROUTES:
        if wanted == method:
            match = pattern.fullmatch(path)
            if match is not None:
                return action, operation, match.groupdict()
    return None


def handles(method: str, path: str) -> bool:
    """Whether ``method path`` is one of the operations here."""
    return route(method, path) is not None


async def handle(
    running: Callable[[], Awaitable[Runtime]],
    enforce: bool,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    request_id = new_request_id()
    found = route(scope["method"], scope["path"])
    assert found is not None
    action, operation, params = found
    runtime = await running()
    body = await read_body(receive, BODY_LIMIT, scope)
    try:
        if body is None:
            raise ControlError(413, "RequestTooLargeException", "the request body is too large")
        query = parse_qs(scope["query_string"].decode("latin-1"))
        call = Call(runtime, query, body, params=params)
        resource = "*"
        if "name" in params:
            name, _ = function_name(unquote(params["name"]), None)  # a name or an ARN
            call.spec = runtime.router.functions.get(name)
            resource = function_arn(name or params["name"])
        elif "uuid" in params:
            call.mapping = runtime.mappings.find(params["uuid"])
            resource = event_source_mapping_arn(params["uuid"])
        if enforce:
            policy = call.spec.resource_policy if call.spec is not None else None
            try:
                principal, allowed = runtime.guard.authorize_control(
                    scope, body, action, resource, policy
                )
            except AuthFailure as exc:
                raise ControlError(403, exc.code, str(exc)) from None
            if not allowed:
                raise ControlError(
                    403,
                    "AccessDeniedException",
                    f"User: {principal.id} is not authorized to perform: {action} on "
                    f"resource: {resource} because no identity-based or resource-based policy "
                    f"allows the {action} action",
                )
        if "name" in params and call.spec is None:
            raise ControlError(404, "ResourceNotFoundException", f"Function not found: {resource}")
        if "uuid" in params and call.mapping is None:
            raise ControlError(
                404,
                "ResourceNotFoundException",
                f"The resource you requested does not exist. (Service: Lambda; UUID: "
                f"{params['uuid']})",
            )
        status, document = await operation(call)
    except ControlError as exc:
        await aws_error(send, exc.status, exc.code, str(exc), request_id)
        return
    except ConfigError as exc:  # a value the function's settings or source refuse
        await aws_error(send, 400, "InvalidParameterValueException", str(exc), request_id)
        return
    headers = [(b"content-type", JSON), (b"x-amzn-requestid", request_id.encode())]
    await respond(send, status, b"" if document is None else _encoder.encode(document), headers)
