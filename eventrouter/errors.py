"""The exceptions eventrouter raises, in one hierarchy.

    EventRouterError
    ├── ConfigError(ValueError)          a setting out of range, a duplicate name, a bad target
    │   └── PolicyError                     a policy document element (its path named)
    ├── InvokeError                      an invocation that did not produce a result
    │   ├── FunctionNotFound(LookupError)   ResourceNotFoundException
    │   ├── InvalidRequestContent(ValueError) the payload is not JSON
    │   ├── PayloadTooLarge(ValueError)     RequestTooLargeException
    │   ├── Throttled                       TooManyRequestsException (with a reason)
    │   ├── AccessDenied                    AccessDeniedException (a policy refused it)
    │   └── FunctionError                   the handler failed; carries the Lambda error body
    │       └── FunctionTimeout(TimeoutError)  Sandbox.Timedout
    ├── SourceError                      a source could not receive or acknowledge
    ├── DestinationError                 a destination could not take a record
    └── StateDirInUse(SourceError)       another router consumes the same state dir

Each error that has a Lambda counterpart carries its Lambda name in ``error_type`` so the
HTTP layer and the CLI can answer in Lambda's shapes.
"""

from __future__ import annotations

from typing import Any


class EventRouterError(Exception):
    """Base class of every error eventrouter raises."""

    error_type = "EventRouterError"


class ConfigError(EventRouterError, ValueError):
    """A function, source or router setting that cannot be accepted."""

    error_type = "InvalidParameterValueException"


class PolicyError(ConfigError):
    """A policy document that cannot be accepted; the message names the bad element."""


class InvokeError(EventRouterError):
    """An invocation that did not produce a result."""

    error_type = "ServiceException"


class FunctionNotFound(InvokeError, LookupError):
    """No function with that name is registered."""

    error_type = "ResourceNotFoundException"


class InvalidRequestContent(InvokeError, ValueError):
    """The payload is not a JSON document."""

    error_type = "InvalidRequestContentException"


class PayloadTooLarge(InvokeError, ValueError):
    """The payload is over the limit of its invocation type."""

    error_type = "RequestTooLargeException"


class Throttled(InvokeError):
    """No concurrency was left for the invocation.

    ``reason`` is Lambda's: ``ReservedFunctionConcurrentInvocationLimitExceeded`` or
    ``ConcurrentInvocationLimitExceeded``.
    """

    error_type = "TooManyRequestsException"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RecursiveInvocation(InvokeError):
    """The invocation was stopped: its chain of invocations loops (``eventrouter.lineage``)."""

    error_type = "RecursiveInvocationException"


class AccessDenied(InvokeError):
    """A policy refused the request: a caller's invocation, or a function's action."""

    error_type = "AccessDeniedException"


class FunctionError(InvokeError):
    """The handler raised, timed out, or returned something that cannot be encoded.

    ``body`` is Lambda's error document:
    ``{"errorMessage", "errorType", "requestId", "stackTrace"}``.
    """

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(f"{body.get('errorType')}: {body.get('errorMessage')}")
        self.body = body

    @property
    def error_type(self) -> str:  # type: ignore[override]
        return str(self.body.get("errorType", "Unhandled"))


class FunctionTimeout(FunctionError, TimeoutError):
    """The handler ran past its timeout (``Sandbox.Timedout``)."""


class SourceError(EventRouterError):
    """A source could not receive, acknowledge or commit."""


class StateDirInUse(SourceError):
    """Another running router already consumes this state directory.

    No longer raised: several routers (``--workers``) consume one state dir, each leasing
    what it claims. Kept so that code catching it still imports."""


class DestinationError(EventRouterError):
    """A destination could not take a record."""


def source_failure(label: str, function: str, exc: BaseException) -> EventRouterError:
    """The one form of a source that could not start: ``<label> for function '<f>': <what>
    (<service error code>)``, from whatever the transport raised (a botocore ``ClientError``
    anywhere in its causes gives the service's code and message; a ``ConfigError`` stays
    one)."""
    service = _service_error(exc)
    what = str(exc)
    for prefix in (f"{label} for function {function!r}: ", f"{label}: "):
        what = what.removeprefix(prefix)
    code = None
    if service is not None:
        code, message = service
        # botocore's own wording ("An error occurred (X) when calling Y: ...") gives way to
        # the service's message; a sentence of ours ("no such stream") stays.
        if message and what.startswith("An error occurred ("):
            what = message
    suffix = f" ({code})" if code else ""
    kind = ConfigError if isinstance(exc, ConfigError) else SourceError  # (a setting, or not)
    return kind(f"{label} for function {function!r}: {what}{suffix}")


def _service_error(exc: BaseException | None) -> tuple[str, str] | None:
    """``(code, message)`` of the first AWS service error in ``exc``'s chain of causes."""
    seen = 0
    while exc is not None and seen < 8:
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            error = response["Error"]
            return str(error.get("Code", "")), str(error.get("Message", ""))
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
