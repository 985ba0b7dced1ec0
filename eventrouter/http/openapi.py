"""An OpenAPI 3.1 document of the router's routes and the Invoke API."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import msgspec

from eventrouter.contract.spec import HttpRoute
from eventrouter.events import HttpEvent
from eventrouter.http.invoke_api import INVOCATION_TYPES
from eventrouter.response import Response

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec
    from eventrouter.registry import Registry

_NO_SCHEMA = (inspect.Parameter.empty, Any, dict, object, Response, HttpEvent, None, type(None))
_ERROR = {
    "type": "object",
    "properties": {
        "errorType": {"type": "string"},
        "errorMessage": {"type": "string"},
        "requestId": {"type": "string"},
        "stackTrace": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["errorType", "errorMessage", "requestId"],
}
_AWS_ERROR = {
    "type": "object",
    "properties": {
        "Type": {"type": "string"},
        "message": {"type": "string"},
        "Reason": {"type": "string"},
    },
    "required": ["Type", "message"],
}


def _schema_type(tp: Any) -> bool:
    if tp in _NO_SCHEMA:
        return False
    try:
        msgspec.json.schema(tp)
    except (TypeError, ValueError):
        return False
    return True


def _route(spec: FunctionSpec) -> HttpRoute | None:
    return spec.source.http_route() if spec.source is not None else None


def openapi_document(router: Registry) -> dict[str, Any]:
    """The document; request and response schemas come from the handlers' msgspec types."""
    types: list[Any] = []
    for spec in router.functions.values():
        if _route(spec) is not None:
            if not spec.http_raw and _schema_type(spec.payload_type):
                types.append(spec.payload_type)
            if _schema_type(spec.return_type):
                types.append(spec.return_type)
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    by_type = dict(zip([id(t) for t in types], schemas, strict=True))
    components["Error"] = _ERROR
    components["AwsError"] = _AWS_ERROR
    paths: dict[str, dict[str, Any]] = {}
    for spec in sorted(router.functions.values(), key=lambda s: s.name):
        route = _route(spec)
        if route is not None:
            for method in route.methods:
                paths.setdefault(route.template, {})[method.lower()] = _operation(
                    spec, route, method, by_type, bool(router.enforce_permissions)
                )
    paths["/2015-03-31/functions/{FunctionName}/invocations"] = {"post": _invoke_operation(router)}
    paths["/healthz"] = {"get": _plain("Liveness", {"200": _status("alive")})}
    paths["/readyz"] = {
        "get": _plain(
            "Readiness: every source started",
            {"200": _status("ready"), "503": _status("starting")},
        )
    }
    if not router.enforce_permissions:  # enforced, the document is not served
        paths["/openapi.json"] = {
            "get": _plain(
                "This document",
                {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            )
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"eventrouter: {router.name}", "version": "1"},
        "paths": paths,
        "components": {"schemas": components},
    }


def _plain(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"summary": summary, "responses": responses}


def _status(description: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"status": {"type": "string"}},
        "required": ["status"],
    }
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _operation(
    spec: FunctionSpec,
    route: HttpRoute,
    method: str,
    by_type: dict[int, Any],
    enforce: bool,
) -> dict[str, Any]:
    params = route.params
    doc = inspect.getdoc(spec.handler) or ""
    operation: dict[str, Any] = {
        "operationId": f"{spec.name}_{method.lower()}" if len(route.methods) > 1 else spec.name,
        "summary": doc.splitlines()[0] if doc else spec.name,
        "parameters": [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ],
        "responses": {
            "400": _error_response("the body failed validation or is not JSON"),
            "413": _error_response("the body is over 6 MB"),
            "415": _error_response("the body is not JSON"),
            "429": _error_response("throttled (Retry-After)"),
            "502": _error_response("the function failed"),
            "504": _error_response("the function timed out"),
        },
    }
    if not spec.http_raw and id(spec.payload_type) in by_type:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": by_type[id(spec.payload_type)]}},
        }
    elif spec.http_raw and method not in ("GET", "HEAD"):
        operation["requestBody"] = {"required": False, "content": {"*/*": {"schema": {}}}}
    responses = operation["responses"]
    if params:
        responses["404"] = _error_response("no route matches (a path parameter holds a '/')")
    if enforce:
        responses["403"] = _error_response("the caller may not invoke the function")
    if spec.http_raw or id(spec.return_type) not in by_type:
        # A Lambda-style handler (or a Response) chooses its own status, headers and body,
        # which may be any of the router's own statuses too: those are named, not constrained.
        for status, response in responses.items():
            responses[status] = {
                "description": f"{response['description']}; or the function's own answer"
            }
        responses["default"] = {"description": "whatever the function answers"}
    if not spec.http_raw or id(spec.return_type) in by_type:
        ok: dict[str, Any] = {"description": "the function's result"}
        if id(spec.return_type) in by_type:
            ok["content"] = {"application/json": {"schema": by_type[id(spec.return_type)]}}
        responses["200"] = ok
    return operation


def _invoke_operation(router: Registry) -> dict[str, Any]:
    aws_error = {"application/json": {"schema": {"$ref": "#/components/schemas/AwsError"}}}
    parameters = [
        {
            "name": "FunctionName",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "examples": sorted(router.functions)},
        },
        {
            "name": "Qualifier",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["$LATEST"]},
        },
        {
            "name": "X-Amz-Invocation-Type",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "enum": list(INVOCATION_TYPES)},
        },
        {
            "name": "X-Amz-Log-Type",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "enum": ["None", "Tail"]},
        },
        {
            "name": "X-Amz-Client-Context",
            "in": "header",
            "required": False,
            "description": "a JSON object (client, custom, env), base64-encoded",
            "schema": {
                "type": "string",
                "contentEncoding": "base64",
                "contentMediaType": "application/json",
                "contentSchema": {"type": "object"},
                "maxLength": 3583,
            },
        },
    ]
    string = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {
        "200": {
            "description": "the result, or the error with X-Amz-Function-Error",
            "headers": {
                "X-Amz-Executed-Version": {**string, "description": "$LATEST"},
                "X-Amz-Function-Error": {**string, "description": "Unhandled, on an error"},
                "X-Amz-Log-Result": {
                    "description": "the last 4 KB of the log, base64 (X-Amz-Log-Type: Tail)",
                    "schema": {"type": "string", "contentEncoding": "base64"},
                },
            },
            "content": {"application/json": {"schema": {}}},
        },
        "202": {"description": "queued (Event)"},
        "204": {"description": "checked (DryRun)"},
        "400": {
            "description": "InvalidRequestContentException (the body or client context is "
            "not JSON), InvalidParameterValueException (a header's value)",
            "content": aws_error,
        },
        "404": {"description": "ResourceNotFoundException", "content": aws_error},
        "413": {"description": "RequestTooLargeException", "content": aws_error},
        "429": {"description": "TooManyRequestsException", "content": aws_error},
    }
    if router.enforce_permissions:
        responses["403"] = {
            "description": "AccessDeniedException, InvalidSignatureException, "
            "UnrecognizedClientException, MissingAuthenticationTokenException",
            "content": aws_error,
        }
    return {
        "operationId": "Invoke",
        "summary": "Lambda's Invoke API",
        "parameters": parameters,
        "requestBody": {"required": False, "content": {"application/json": {"schema": {}}}},
        "responses": responses,
    }
