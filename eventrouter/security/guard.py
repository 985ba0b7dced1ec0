"""Enforcing permissions: who may invoke a function, and what a function may do.

The engine owns one :class:`Guard`. With ``Router(enforce_permissions=True)`` it decides

- every HTTP request (the Invoke API: SigV4; application routes: their ``auth``) against
  the function's resource policy (``lambda:InvokeFunction``; routes ``lambda:InvokeFunctionUrl``);
- every pull source (Kafka, SQS, embedded queue) at start-up, as a service principal with
  ``aws:SourceArn``;
- every action of a function (``ctx.invoke``, ``ctx.send``, destinations) against its
  execution role, and for invocations the target's resource policy too.

Without enforcement nothing is checked, and the start-up log says so.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from eventrouter.arns import ACCOUNT, function_arn, function_of
from eventrouter.errors import AccessDenied, ConfigError
from eventrouter.observability.logging import redact_secrets
from eventrouter.security.credentials import Credentials
from eventrouter.security.permissions import INVOKE, INVOKE_URL, role_principal
from eventrouter.security.policy import (
    ANONYMOUS,
    Decision,
    Policy,
    Principal,
    Request,
    decide,
    may_allow,
)
from eventrouter.security.sigv4 import SignatureError, verify

if TYPE_CHECKING:
    from eventrouter.contract.spec import Destination, FunctionSpec, RouterInfo

log = structlog.get_logger("eventrouter")


def request_context(scope: Mapping[str, Any], principal: Principal) -> dict[str, str]:
    """The condition keys of an HTTP request by ``principal``."""
    context = {**now_context(), **principal_context(principal)}
    client = scope.get("client")
    if client:
        context["aws:SourceIp"] = str(client[0])
    context["aws:SecureTransport"] = "true" if scope.get("scheme") == "https" else "false"
    return context


def now_context() -> dict[str, str]:
    now = time.time()
    return {
        "aws:CurrentTime": datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now)),
    }


def principal_context(principal: Principal) -> dict[str, str]:
    if principal.kind == "Anonymous":
        return {"aws:PrincipalType": "Anonymous"}
    if principal.kind == "Service":
        return {"aws:PrincipalServiceName": principal.id}
    context = {"aws:PrincipalArn": principal.id, "aws:PrincipalType": "User"}
    if principal.account:
        context["aws:PrincipalAccount"] = principal.account
    resource = principal.id.split(":", 5)[-1]
    if resource.startswith("user/"):
        context["aws:username"] = resource.rsplit("/", 1)[-1]
    elif resource.startswith("role/"):
        context["aws:PrincipalType"] = "AssumedRole"
    return context


class AuthFailure(Exception):
    """An HTTP caller that could not be authenticated; ``code`` is AWS's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Guard:
    """The permission checks of one engine (see the module's documentation)."""

    def __init__(self, router: RouterInfo) -> None:
        self.router = router
        self.enforce = bool(router.enforce_permissions)
        self.credentials = Credentials.load(router.credentials) if self.enforce else Credentials()
        redact_secrets(self.credentials.secret_values())

    # -- callers over HTTP -------------------------------------------------------------------

    def authenticate(self, scope: Mapping[str, Any], body: bytes, auth: str) -> Principal:
        """The principal of an HTTP request under ``auth``, or :class:`AuthFailure`."""
        if auth == "NONE":
            return ANONYMOUS
        headers = scope["headers"]
        if auth == "API_KEY":
            for name, value in headers:
                if name.lower() == b"x-api-key":
                    principal = self.credentials.api_keys.get(value.decode("latin-1"))
                    if principal is not None:
                        return principal
            raise AuthFailure("AccessDeniedException", "Forbidden")
        try:
            signed = verify(
                method=scope["method"],
                raw_path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
                query=scope["query_string"].decode("latin-1"),
                headers=headers,
                body=body,
                secret_for=self.credentials.secrets,
            )
        except SignatureError as exc:
            raise AuthFailure(exc.code, str(exc)) from None
        return self.credentials.principals[signed.access_key]

    def authorize_http(
        self, scope: Mapping[str, Any], body: bytes, auth: str, function: str, action: str
    ) -> tuple[Principal, bool]:
        """The caller of an HTTP request under ``auth`` and whether its identity policy or
        the function's resource policy lets it ``action`` ``function`` (``False`` for a
        function that does not exist); :class:`AuthFailure` when the caller cannot be
        authenticated."""
        principal = self.authenticate(scope, body, auth)
        context = request_context(scope, principal)
        if action == INVOKE_URL:
            context["lambda:FunctionUrlAuthType"] = auth
        spec = self.router.functions.get(function)
        if spec is None:
            return principal, False
        request = Request(action, function_arn(function), principal, context)
        identity = self.credentials.policies.get(principal.id)
        return principal, decide(request, identity, spec.resource_policy) is Decision.ALLOW

    def authorize_resource(
        self,
        scope: Mapping[str, Any],
        body: bytes,
        action: str,
        resources: list[tuple[str, Policy | None]],
    ) -> tuple[Principal, str | None]:
        """A SigV4-signed request to ``action`` each ``(arn, resource policy)`` (an event
        bus's ``PutEvents``): the caller, and the first ARN refused (``None``: all allowed)."""
        principal = self.authenticate(scope, body, "AWS_IAM")
        context = request_context(scope, principal)
        identity = self.credentials.policies.get(principal.id)
        for arn, policy in resources:
            request = Request(action, arn, principal, context)
            if decide(request, identity, policy) is not Decision.ALLOW:
                return principal, arn
        return principal, None

    def authorize_control(
        self,
        scope: Mapping[str, Any],
        body: bytes,
        action: str,
        resource: str,
        resource_policy: Policy | None = None,
    ) -> tuple[Principal, bool]:
        """A SigV4-signed control-plane request (``lambda:GetFunction``...): the caller and
        whether its identity policy, or the function's resource policy, allows ``action`` on
        ``resource``; :class:`AuthFailure` when the caller cannot be authenticated."""
        principal = self.authenticate(scope, body, "AWS_IAM")
        request = Request(action, resource, principal, request_context(scope, principal))
        identity = self.credentials.policies.get(principal.id)
        return principal, decide(request, identity, resource_policy) is Decision.ALLOW

    # -- what a function does ----------------------------------------------------------------

    def _as_role(
        self, spec: FunctionSpec, action: str, resource: str, target: str | None = None
    ) -> tuple[Request, tuple[Policy | None, Policy | None]]:
        """The request of function ``spec`` acting as its role, and the policies that decide
        it: the role, and for an invocation the target function's resource policy."""
        principal = role_principal(spec.name)
        request = Request(
            action, resource, principal, {**now_context(), **principal_context(principal)}
        )
        other = self.router.functions.get(target) if target is not None else None
        return request, (spec.role, other.resource_policy if other is not None else None)

    def _sending(
        self, spec: FunctionSpec, destination: Destination, key: str
    ) -> tuple[Request, tuple[Policy | None, Policy | None]]:
        action, resource = destination.permission(key)
        # Sending to a function is invoking it: its resource policy has a say too.
        target = function_of(resource) if action == INVOKE else None
        return self._as_role(spec, action, resource, target)

    @staticmethod
    def _require(request: Request, policies: tuple[Policy | None, Policy | None]) -> None:
        decision = decide(request, *policies)
        if decision is not Decision.ALLOW:
            assert request.principal is not None
            why = "an explicit deny" if decision is Decision.DENY else "no policy allows it"
            raise AccessDenied(
                f"{request.principal.id} is not authorized to perform: {request.action} "
                f"on resource: {request.resource} ({why})"
            )

    def check_invoke_from(self, spec: FunctionSpec, target: str) -> None:
        """Raise :class:`AccessDenied` unless function ``spec`` may invoke ``target``."""
        if self.enforce:
            self._require(*self._as_role(spec, INVOKE, function_arn(target), target))

    def check_send(self, spec: FunctionSpec, destination: Destination, key: str) -> None:
        """Raise :class:`AccessDenied` unless function ``spec`` may send to ``destination``."""
        if self.enforce:
            self._require(*self._sending(spec, destination, key))

    # -- start-up ----------------------------------------------------------------------------

    def check_source(self, spec: FunctionSpec, service: str, source_arn: str) -> None:
        """Raise ``ConfigError`` unless the function's resource policy lets its source invoke it."""
        if not self.enforce:
            return
        principal = Principal("Service", service)
        context = {**now_context(), "aws:SourceArn": source_arn, "aws:SourceAccount": ACCOUNT}
        request = Request(INVOKE, function_arn(spec.name), principal, context)
        if decide(request, spec.resource_policy) is not Decision.ALLOW:
            raise ConfigError(
                f"function {spec.name!r}: its resource policy does not let its source invoke it "
                f"(principal {service}, aws:SourceArn {source_arn}); add "
                f"router.add_permission({spec.name!r}, principal={service!r}, "
                f"source_arn={source_arn!r})"
            )

    def check_startup(self, *, announce: bool = True) -> None:
        """The checks that can be made before any event: destinations and push sources.

        Without enforcement, ``announce`` says so in the log (a router that serves)."""
        if not self.enforce:
            if not announce:
                return
            routes = []
            for s in self.router.functions.values():
                route = s.source.http_route() if s.source is not None else None
                if route is not None and route.auth != "NONE":
                    routes.append(s.name)
            fields = {"unchecked_auth_routes": routes} if routes else {}
            log.warning(
                "permissions are not enforced: any caller may invoke any function "
                "(Router(enforce_permissions=True) or --enforce-permissions to enforce them)",
                **fields,
            )
            return
        for spec in self.router.functions.values():
            source = spec.source
            if source is not None and source.principal is not None:
                for arn in source.source_arns():
                    self.check_source(spec, source.principal, arn)
            for field in ("on_success", "on_failure"):
                destination = getattr(spec.settings, field)
                if destination is None:
                    continue
                request, policies = self._sending(spec, destination, "example")
                if not may_allow(request, *policies):
                    assert request.principal is not None
                    raise ConfigError(
                        f"function {spec.name!r}: {field}={destination.describe()} is not "
                        f"allowed: its role ({request.principal.id}) does not allow "
                        f"{request.action} on {request.resource}"
                    )
