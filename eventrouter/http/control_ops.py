"""The operations of Lambda's control plane (``http/control_api.py`` routes to them): each
takes a :class:`Call` and answers ``(status, document)``, raising ``ControlError`` for
Lambda's errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import msgspec

from eventrouter.arns import function_arn
from eventrouter.control.overrides import ConfigurationChange, InvokeConfig, MappingChange
from eventrouter.control.plane import ControlError, invalid
from eventrouter.http.control_docs import (
    account_settings,
    configuration,
    invoke_config,
    lambda_time,
)
from eventrouter.http.invoke_api import function_name

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec
    from eventrouter.control.mappings import Mapping
    from eventrouter.runtime.interface import Runtime

#: ``ListFunctions`` gives at most this many a page (Lambda's own maximum).
PAGE_LIMIT = 50

_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class Call:
    """One control-plane request, its function or mapping found."""

    runtime: Runtime
    query: dict[str, list[str]]
    body: bytes
    spec: FunctionSpec | None = None
    mapping: Mapping | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        assert self.spec is not None
        return self.spec.name

    def arg(self, key: str) -> str | None:
        values = self.query.get(key)
        return values[0] if values else None

    def json(self) -> dict[str, Any]:
        try:
            document = msgspec.json.decode(self.body or b"{}")
        except msgspec.DecodeError as exc:
            raise invalid(f"the request body is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise invalid("the request body must be a JSON object")
        return document


Operation = Callable[[Call], Awaitable[tuple[int, Any]]]


def _page(call: Call, keys: list[str]) -> tuple[list[str], str | None]:
    """One page of ``keys`` (sorted) after ``Marker``, at most ``MaxItems`` long; and the
    next page's marker."""
    marker = call.arg("Marker") or ""
    raw_limit = call.arg("MaxItems") or str(PAGE_LIMIT)
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 10_000:
        raise invalid("MaxItems must be 1 to 10000")
    if marker and marker not in keys:
        raise invalid(f"Marker {marker!r} is unknown")
    start = keys.index(marker) if marker else 0
    page = keys[start : start + min(int(raw_limit), PAGE_LIMIT)]
    following = keys[start + len(page)] if start + len(page) < len(keys) else None
    return page, following


# -- functions --------------------------------------------------------------------------------


async def list_functions(call: Call) -> tuple[int, Any]:
    functions = call.runtime.router.functions
    page, following = _page(call, sorted(functions))
    document: dict[str, Any] = {
        "Functions": [configuration(call.runtime, functions[n]) for n in page]
    }
    if following is not None:
        document["NextMarker"] = following
    return 200, document


async def get_function(call: Call) -> tuple[int, Any]:
    assert call.spec is not None
    document: dict[str, Any] = {
        "Configuration": configuration(call.runtime, call.spec),
        "Code": {"RepositoryType": "S3", "Location": ""},
    }
    reserved = call.runtime.slots.functions[call.name].reserved
    if reserved is not None:
        document["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
    return 200, document


async def get_configuration(call: Call) -> tuple[int, Any]:
    assert call.spec is not None
    return 200, configuration(call.runtime, call.spec)


async def update_configuration(call: Call) -> tuple[int, Any]:
    assert call.spec is not None
    request = call.json()
    unsupported = sorted(set(request) - {"Timeout", "MemorySize", "Environment", "RevisionId"})
    if unsupported:
        raise invalid(
            f"{', '.join(unsupported)}: not changeable at run time here (Timeout, MemorySize "
            "and Environment are); change the function's code"
        )
    environment = request.get("Environment")
    variables = None
    if environment is not None:
        variables = environment.get("Variables", {}) if isinstance(environment, dict) else None
        if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
        ):
            raise invalid("Environment.Variables must map names to strings")
    change = ConfigurationChange(
        timeout=_number(request, "Timeout"),
        memory_mb=_whole(request, "MemorySize"),
        environment=variables,
    )
    call.runtime.control.update_configuration(call.name, change, request.get("RevisionId"))
    return 200, configuration(call.runtime, call.spec)


async def get_settings(call: Call) -> tuple[int, Any]:
    return 200, account_settings(call.runtime)


# -- concurrency ------------------------------------------------------------------------------


async def get_concurrency(call: Call) -> tuple[int, Any]:
    reserved = call.runtime.slots.functions[call.name].reserved
    return 200, {} if reserved is None else {"ReservedConcurrentExecutions": reserved}


async def put_concurrency(call: Call) -> tuple[int, Any]:
    value = call.json().get("ReservedConcurrentExecutions")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid("ReservedConcurrentExecutions must be a whole number, 0 or more")
    call.runtime.control.set_concurrency(call.name, value)
    return 200, {"ReservedConcurrentExecutions": value}


async def delete_concurrency(call: Call) -> tuple[int, Any]:
    call.runtime.control.set_concurrency(call.name, None)
    return 204, None


async def get_provisioned(call: Call) -> tuple[int, Any]:
    assert call.spec is not None
    wanted = call.spec.settings.provisioned_concurrency
    if not wanted:
        raise ControlError(
            404,
            "ProvisionedConcurrencyConfigNotFoundException",
            f"No Provisioned Concurrency Config found for this function: {call.name}",
        )
    state = call.runtime.invoker.states[call.name]
    if state.pool is not None:
        ready = min(wanted, state.pool.provisioned_ready)
    else:
        ready = wanted if state.warm else 0
    return 200, {
        "RequestedProvisionedConcurrentExecutions": wanted,
        "AvailableProvisionedConcurrentExecutions": ready,
        "AllocatedProvisionedConcurrentExecutions": ready,
        "Status": "READY" if ready >= wanted else "IN_PROGRESS",
        "LastModified": lambda_time(call.runtime.control.modified[call.name]),
    }


async def put_provisioned(call: Call) -> tuple[int, Any]:
    value = call.json().get("ProvisionedConcurrentExecutions")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid("ProvisionedConcurrentExecutions must be a whole number, 1 or more")
    call.runtime.control.set_provisioned(call.name, value)
    _, document = await get_provisioned(call)
    return 202, document


async def delete_provisioned(call: Call) -> tuple[int, Any]:
    call.runtime.control.set_provisioned(call.name, None)
    return 204, None


# -- resource policy --------------------------------------------------------------------------


async def get_policy(call: Call) -> tuple[int, Any]:
    statements = call.runtime.control.statements(call.name)
    if not statements:
        raise ControlError(
            404, "ResourceNotFoundException", "The resource you requested does not exist."
        )
    document = {"Version": "2012-10-17", "Id": "default", "Statement": statements}
    return 200, {
        "Policy": _encoder.encode(document).decode(),
        "RevisionId": call.runtime.control.revision(call.name),
    }


async def add_permission(call: Call) -> tuple[int, Any]:
    request = call.json()
    if request.get("Qualifier") not in (None, "$LATEST"):
        raise invalid("eventrouter's functions have one version: $LATEST")
    statement = call.runtime.control.add_permission(call.name, request, request.get("RevisionId"))
    return 201, {"Statement": _encoder.encode(statement).decode()}


async def remove_permission(call: Call) -> tuple[int, Any]:
    call.runtime.control.remove_permission(
        call.name, unquote(call.params["sid"]), call.arg("RevisionId")
    )
    return 204, None


# -- asynchronous invocation ------------------------------------------------------------------


async def get_invoke_config(call: Call) -> tuple[int, Any]:
    assert call.spec is not None
    config = call.runtime.control.invoke_config(call.name)
    if config is None:
        raise ControlError(
            404,
            "ResourceNotFoundException",
            f"The function {function_arn(call.name)} doesn't have an EventInvokeConfig",
        )
    return 200, invoke_config(call.spec, config)


async def list_invoke_configs(call: Call) -> tuple[int, Any]:
    assert call.spec is not None
    config = call.runtime.control.invoke_config(call.name)
    configs = [] if config is None else [invoke_config(call.spec, config)]
    return 200, {"FunctionEventInvokeConfigs": configs}


async def put_invoke_config(call: Call, *, merge: bool = False) -> tuple[int, Any]:
    """``PutFunctionEventInvokeConfig``: the config replaced (``merge``: ``Update…``, which
    keeps what the request leaves out)."""
    assert call.spec is not None
    request = call.json()
    destinations = request.get("DestinationConfig") or {}
    arns: dict[str, str | None] = {}
    for key in ("OnSuccess", "OnFailure"):
        target = destinations.get(key) or {}
        arn = target.get("Destination") if isinstance(target, dict) else None
        if arn is not None and not isinstance(arn, str):
            raise invalid(f"DestinationConfig.{key}.Destination must be an ARN")
        arns[key] = arn
    config = InvokeConfig(
        max_retries=_whole(request, "MaximumRetryAttempts"),
        max_event_age=_number(request, "MaximumEventAgeInSeconds"),
        on_success=arns["OnSuccess"],
        on_failure=arns["OnFailure"],
    )
    saved = call.runtime.control.put_invoke_config(call.name, config, merge=merge)
    return 200, invoke_config(call.spec, saved)


async def update_invoke_config(call: Call) -> tuple[int, Any]:
    return await put_invoke_config(call, merge=True)


async def delete_invoke_config(call: Call) -> tuple[int, Any]:
    call.runtime.control.delete_invoke_config(call.name)
    return 204, None


async def get_recursion(call: Call) -> tuple[int, Any]:
    assert call.spec is not None
    return 200, {"RecursiveLoop": call.spec.settings.recursive_loop}


async def put_recursion(call: Call) -> tuple[int, Any]:
    value = call.json().get("RecursiveLoop")
    if not isinstance(value, str):
        raise invalid("RecursiveLoop must be Allow or Terminate")
    call.runtime.control.set_recursion(call.name, value)
    return 200, {"RecursiveLoop": value}


# -- event source mappings --------------------------------------------------------------------


async def list_mappings(call: Call) -> tuple[int, Any]:
    mappings = call.runtime.mappings
    wanted = call.arg("FunctionName")
    source_arn = call.arg("EventSourceArn")
    chosen = []
    for mapping in mappings.by_uuid.values():
        document = mappings.describe(mapping)
        if wanted is not None and function_name(wanted, None)[0] != mapping.name:
            continue
        if source_arn is not None and document.get("EventSourceArn") != source_arn:
            continue
        chosen.append(mapping.uuid)
    page, following = _page(call, sorted(chosen))
    result: dict[str, Any] = {
        "EventSourceMappings": [mappings.describe(mappings.by_uuid[u]) for u in page]
    }
    if following is not None:
        result["NextMarker"] = following
    return 200, result


async def get_mapping(call: Call) -> tuple[int, Any]:
    assert call.mapping is not None
    return 200, call.runtime.mappings.describe(call.mapping)


async def update_mapping(call: Call) -> tuple[int, Any]:
    assert call.mapping is not None
    request = call.json()
    known = {"UUID", "FunctionName", "Enabled", "BatchSize", "MaximumBatchingWindowInSeconds"}
    unsupported = sorted(set(request) - known)
    if unsupported:
        raise invalid(
            f"{', '.join(unsupported)}: not changeable at run time here (Enabled, BatchSize "
            "and MaximumBatchingWindowInSeconds are); change the source in the code"
        )
    named = request.get("FunctionName")
    if named is not None and function_name(str(named), None)[0] != call.mapping.name:
        raise invalid("a mapping cannot move to another function here")
    enabled = request.get("Enabled", call.mapping.enabled)
    if not isinstance(enabled, bool):
        raise invalid("Enabled must be true or false")
    change = MappingChange(
        enabled=enabled,
        batch_size=_whole(request, "BatchSize"),
        batching_window=_number(request, "MaximumBatchingWindowInSeconds"),
    )
    await call.runtime.mappings.update(call.mapping, change)
    return 202, call.runtime.mappings.describe(call.mapping)


def _number(request: dict[str, Any], key: str) -> float | None:
    value = request.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise invalid(f"{key} must be a number")
    return value


def _whole(request: dict[str, Any], key: str) -> int | None:
    value = request.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise invalid(f"{key} must be a whole number")
    return value
