"""The documents of Lambda's control plane, as Lambda returns them: a function's
configuration, the account's settings, an event-invoke config."""

from __future__ import annotations

import base64
import hashlib
import math
import platform
import sys
import time
from typing import TYPE_CHECKING, Any

from eventrouter.arns import LATEST, function_arn, role_arn
from eventrouter.control.destinations import arn_of

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec
    from eventrouter.control.overrides import InvokeConfig
    from eventrouter.runtime.interface import Runtime


def lambda_time(epoch: float) -> str:
    """Lambda's ``LastModified`` form: ``2026-12-04T11:43:08.000+0000``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(epoch))


def configuration(runtime: Runtime, spec: FunctionSpec) -> dict[str, Any]:
    """``FunctionConfiguration`` of one function, as Lambda returns it."""
    settings = spec.settings
    handler = (
        " ".join(spec.command)
        if spec.command is not None
        else f"{spec.module}.{getattr(spec.handler, '__name__', spec.name)}"
    )
    digest = hashlib.sha256(handler.encode()).digest()
    document: dict[str, Any] = {
        "FunctionName": spec.name,
        "FunctionArn": function_arn(spec.name),
        "Role": role_arn(spec.name),
        "Handler": handler,
        "CodeSize": 0,
        "Description": "",
        "Timeout": math.ceil(settings.timeout),
        "MemorySize": settings.memory_mb,
        "LastModified": lambda_time(runtime.control.modified[spec.name]),
        "CodeSha256": base64.b64encode(digest).decode(),
        "Version": LATEST,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": runtime.control.revision(spec.name),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["arm64" if platform.machine() in ("arm64", "aarch64") else "x86_64"],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
        if settings.snapstart
        else {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": settings.log_format, "LogGroup": f"/aws/lambda/{spec.name}"},
    }
    if spec.environment:
        document["Environment"] = {"Variables": dict(spec.environment)}
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


def invoke_config(spec: FunctionSpec, config: InvokeConfig) -> dict[str, Any]:
    """``FunctionEventInvokeConfig``: the settings in force (what the operator set over what
    the code sets)."""
    settings = spec.settings
    destinations: dict[str, Any] = {}
    for field, key in (("on_success", "OnSuccess"), ("on_failure", "OnFailure")):
        destination = getattr(settings, field)
        destinations[key] = {} if destination is None else {"Destination": arn_of(destination)}
    return {
        "LastModified": config.modified,
        "FunctionArn": f"{function_arn(spec.name)}:{LATEST}",
        "MaximumRetryAttempts": settings.max_retries,
        "MaximumEventAgeInSeconds": round(settings.max_event_age),
        "DestinationConfig": destinations,
    }
