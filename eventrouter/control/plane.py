"""``Control``: what Lambda's control plane changes in a running router's functions.

Each change is checked, applied at once (the next invocation sees it), logged, and kept in
``<state dir>/control.json`` (``overrides.py``) so that it holds again after a restart. What
a function's code sets is the default a ``Delete…`` returns to. The HTTP side is
``http/control_api.py``; event source mappings are ``mappings.py``'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import structlog

from eventrouter.arns import function_arn
from eventrouter.control.destinations import destination_for
from eventrouter.control.overrides import (
    ConfigurationChange,
    InvokeConfig,
    Overrides,
    edit,
    load,
    stamp,
    written_here,
)
from eventrouter.errors import ConfigError, EventRouterError, PolicyError
from eventrouter.events import new_request_id
from eventrouter.runtime.environments.warmup import init_phase
from eventrouter.security.permissions import INVOKE_URL, Permission
from eventrouter.security.policy import Policy

if TYPE_CHECKING:
    from eventrouter.config import FunctionSettings
    from eventrouter.control.mappings import MappingPort, Mappings

log = structlog.get_logger("eventrouter")

_ACTION = re.compile(r"(lambda:[*]|lambda:[A-Za-z]+|[*])")
_SID = re.compile(r"[A-Za-z0-9_\-]{1,100}")


class ControlError(EventRouterError):
    """A change refused, with Lambda's HTTP status and error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def invalid(message: str) -> ControlError:
    return ControlError(400, "InvalidParameterValueException", message)


class Control:
    """The run-time changes of one router's functions."""

    def __init__(
        self, runtime: MappingPort, state_dir: str | os.PathLike[str], workers: int
    ) -> None:
        self.runtime = runtime
        self.state_dir = state_dir
        self.workers = workers
        functions = runtime.router.functions
        #: What the code set: the defaults the overrides are applied to.
        self.code_settings: dict[str, FunctionSettings] = {
            name: spec.settings for name, spec in functions.items()
        }
        self.code_environment = {name: dict(spec.environment) for name, spec in functions.items()}
        self.code_policies = {name: spec.resource_policy for name, spec in functions.items()}
        self.modified = {name: time.time() for name in functions}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- start -------------------------------------------------------------------------------

    def apply(self, *, reload: bool = False) -> None:
        """Apply what operators changed before this start (a change that no longer applies,
        e.g. to a function whose code changed, is logged and skipped). ``reload``: again,
        as another worker of the router changed it (every function is settled anew; the
        reservations, which cannot change under ``--workers``, are left alone)."""
        overrides = load(self.state_dir)
        functions = self.runtime.router.functions
        for name, reserved in overrides.concurrency.items():
            if name in functions and not reload:
                try:
                    self.runtime.slots.reserve(name, reserved)
                except ConfigError as exc:
                    log.warning("concurrency override not applied", function=name, error=str(exc))
        changed = (
            set(functions)
            if reload
            else {
                *overrides.concurrency,
                *overrides.provisioned,
                *overrides.recursion,
                *overrides.configuration,
                *overrides.invoke_configs,
                *overrides.added_statements,
                *overrides.removed_statements,
            }
        )
        for name in sorted(changed & set(functions)):
            try:
                self._settle(name, overrides)
                self._settle_policy(name, overrides)
            except (ConfigError, ControlError) as exc:
                log.warning("control-plane change not applied", function=name, error=str(exc))
                continue
            pool = self.runtime.invoker.states[name].pool
            wanted = functions[name].settings.provisioned_concurrency
            if reload and pool is not None and pool.provisioned != wanted:
                pool.set_provisioned(wanted)

    async def watch(self, mappings: Mappings, interval: float = 1.0) -> None:
        """Under ``--workers``: apply what another worker changed (its ``control.json``),
        looked at every ``interval`` seconds."""
        path = Path(self.state_dir) / "control.json"
        seen = stamp(path)
        while True:
            await anyio.sleep(interval)  # another process's file: nothing to await
            now = stamp(path)
            if now == seen:
                continue
            seen = now
            if written_here(path, now):
                continue  # this worker's own change, applied already
            self.apply(reload=True)
            await mappings.reload()
            log.info("control-plane changes of another worker applied")

    def restore(self) -> None:
        """Give the functions back what their code set (the engine stops: the registry may
        be started again, and the next engine applies ``control.json`` itself)."""
        for name, spec in self.runtime.router.functions.items():
            spec.settings = self.code_settings[name]
            spec.environment = self.code_environment[name]
            spec.resource_policy = self.code_policies[name]

    # -- concurrency -------------------------------------------------------------------------

    def set_concurrency(self, name: str, reserved: int | None) -> None:
        """``PutFunctionConcurrency`` (``None``: ``DeleteFunctionConcurrency``, back to what
        the code sets)."""
        if self.workers > 1:
            raise ControlError(
                409,
                "ResourceConflictException",
                "reserved concurrency cannot change at run time under --workers yet (the "
                "workers share its slots in files sized at start): change the code",
            )
        default = self.code_settings[name].reserved_concurrency
        with edit(self.state_dir) as overrides:
            if reserved is None:
                overrides.concurrency.pop(name, None)
            else:
                overrides.concurrency[name] = reserved
            self._settle(name, overrides)  # checks it against the provisioned concurrency
            try:
                self.runtime.slots.reserve(name, default if reserved is None else reserved)
            except ConfigError as exc:
                self._settle(name, load(self.state_dir))
                raise invalid(str(exc)) from None
        self.modified[name] = time.time()
        log.info("reserved concurrency changed", function=name, reserved=reserved, default=default)

    # -- configuration -----------------------------------------------------------------------

    def update_configuration(
        self, name: str, change: ConfigurationChange, revision: str | None = None
    ) -> None:
        """``UpdateFunctionConfiguration``: timeout, memory size, and the environment
        variables of a process-isolated function (its environments are then replaced)."""
        self._check_revision(name, revision)
        spec = self.runtime.router.functions[name]
        if change.environment is not None and not spec.isolated:
            raise invalid(
                f"function {name!r} runs inline, in the router's process: environment variables "
                "apply to isolation='process' functions only"
            )
        with edit(self.state_dir) as overrides:
            merged = overrides.configuration.get(name, ConfigurationChange())
            for field in ("timeout", "memory_mb", "environment"):
                value = getattr(change, field)
                if value is not None:
                    setattr(merged, field, value)
            overrides.configuration[name] = merged
            self._settle(name, overrides)
        self.modified[name] = time.time()
        log.info("function configuration changed", function=name, **msgspec.structs.asdict(change))

    def set_provisioned(self, name: str, count: int | None) -> None:
        """``PutProvisionedConcurrencyConfig`` (``None``: ``Delete…``, back to the code's):
        environments are started (or let go) in the background."""
        with edit(self.state_dir) as overrides:
            if count is None:
                overrides.provisioned.pop(name, None)
            else:
                overrides.provisioned[name] = count
            self._settle(name, overrides)
        self.modified[name] = time.time()
        state = self.runtime.invoker.states[name]
        wanted = state.spec.settings.provisioned_concurrency
        if state.pool is not None:
            state.pool.set_provisioned(wanted)
        elif wanted and not state.warm:  # an inline function: its init runs now
            warming = init_phase(state, self.runtime.invoker.executor, new_request_id())
            task = asyncio.get_running_loop().create_task(warming)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        log.info("provisioned concurrency changed", function=name, provisioned=wanted)

    def set_recursion(self, name: str, recursive_loop: str) -> None:
        """``PutFunctionRecursionConfig``: ``"Allow"`` or ``"Terminate"`` recursive loops."""
        if recursive_loop not in ("Allow", "Terminate"):
            raise invalid("RecursiveLoop must be Allow or Terminate")
        with edit(self.state_dir) as overrides:
            if recursive_loop == self.code_settings[name].recursive_loop:
                overrides.recursion.pop(name, None)
            else:
                overrides.recursion[name] = recursive_loop
            self._settle(name, overrides)
        self.modified[name] = time.time()
        log.info("recursion config changed", function=name, recursive_loop=recursive_loop)

    # -- asynchronous invocation -------------------------------------------------------------

    def invoke_config(self, name: str) -> InvokeConfig | None:
        """The operator's event-invoke config of ``name`` (``None``: what the code sets)."""
        return load(self.state_dir).invoke_configs.get(name)

    def put_invoke_config(self, name: str, config: InvokeConfig, *, merge: bool) -> InvokeConfig:
        """``PutFunctionEventInvokeConfig`` (replaces) or ``Update…`` (``merge``: keeps what
        the request leaves out)."""
        with edit(self.state_dir) as overrides:
            old = overrides.invoke_configs.get(name)
            if merge and old is not None:
                for field in ("max_retries", "max_event_age", "on_success", "on_failure"):
                    if getattr(config, field) is None:
                        setattr(config, field, getattr(old, field))
            config.modified = time.time()
            overrides.invoke_configs[name] = config
            self._settle(name, overrides)
        self.modified[name] = time.time()
        log.info("event invoke config changed", function=name, **msgspec.structs.asdict(config))
        return config

    def delete_invoke_config(self, name: str) -> None:
        with edit(self.state_dir) as overrides:
            if overrides.invoke_configs.pop(name, None) is None:
                raise ControlError(
                    404,
                    "ResourceNotFoundException",
                    f"The function {function_arn(name)} doesn't have an EventInvokeConfig",
                )
            self._settle(name, overrides)
        self.modified[name] = time.time()
        log.info("event invoke config deleted", function=name)

    # -- resource policy ---------------------------------------------------------------------

    def statements(self, name: str) -> list[dict[str, Any]]:
        """The statements of ``name``'s resource policy in force."""
        return documents(self.runtime.router.functions[name].resource_policy)

    def revision(self, name: str) -> str:
        """The function's ``RevisionId``: changes with its settings and resource policy."""
        spec = self.runtime.router.functions[name]
        text = f"{spec.settings!r}|{sorted(spec.environment.items())}|{self.statements(name)}"
        return str(uuid.UUID(bytes=hashlib.sha256(text.encode()).digest()[:16]))

    def add_permission(
        self, name: str, request: dict[str, Any], revision: str | None = None
    ) -> dict[str, Any]:
        """``AddPermission``: one statement added to the resource policy (returned as
        Lambda writes it); ``ResourceConflictException`` for a ``Sid`` already there."""
        self._check_revision(name, revision)
        statement = permission_statement(name, request)
        if any(s.get("Sid") == statement["Sid"] for s in self.statements(name)):
            raise ControlError(
                409,
                "ResourceConflictException",
                f"The statement id ({statement['Sid']}) provided already exists. Please "
                "provide a new statement id, or remove the existing statement.",
            )
        with edit(self.state_dir) as overrides:
            overrides.added_statements.setdefault(name, []).append(statement)
            self._settle_policy(name, overrides)
        self.modified[name] = time.time()
        log.info("permission added", function=name, statement=statement)
        return statement

    def remove_permission(self, name: str, sid: str, revision: str | None = None) -> None:
        self._check_revision(name, revision)
        if not any(s.get("Sid") == sid for s in self.statements(name)):
            raise ControlError(
                404,
                "ResourceNotFoundException",
                f"Statement {sid} is not found in resource policy.",
            )
        with edit(self.state_dir) as overrides:
            added = overrides.added_statements.get(name, [])
            kept = [s for s in added if s.get("Sid") != sid]
            if len(kept) == len(added):
                overrides.removed_statements.setdefault(name, []).append(sid)
            elif kept:
                overrides.added_statements[name] = kept
            else:
                overrides.added_statements.pop(name)
            self._settle_policy(name, overrides)
        self.modified[name] = time.time()
        log.info("permission removed", function=name, sid=sid)

    # -- applying ----------------------------------------------------------------------------

    def _settle(self, name: str, overrides: Overrides) -> None:
        """Set ``name``'s settings and environment to the code's with the overrides applied."""
        spec = self.runtime.router.functions[name]
        fields: dict[str, Any] = {}
        if name in overrides.recursion:
            fields["recursive_loop"] = overrides.recursion[name]
        if name in overrides.provisioned:
            fields["provisioned_concurrency"] = overrides.provisioned[name]
        if name in overrides.concurrency:
            fields["reserved_concurrency"] = overrides.concurrency[name]
        change = overrides.configuration.get(name)
        if change is not None:
            if change.timeout is not None:
                fields["timeout"] = change.timeout
            if change.memory_mb is not None:
                fields["memory_mb"] = change.memory_mb
        config = overrides.invoke_configs.get(name)
        if config is not None:
            if config.max_retries is not None:
                fields["max_retries"] = config.max_retries
            if config.max_event_age is not None:
                fields["max_event_age"] = config.max_event_age
            for field in ("on_success", "on_failure"):
                arn = getattr(config, field)
                if arn is not None:
                    destination = destination_for(arn, self.runtime)
                    destination.check(self.runtime)
                    fields[field] = destination
        try:
            settings = msgspec.structs.replace(self.code_settings[name], **fields)
        except ConfigError as exc:
            raise invalid(str(exc)) from None
        environment = self.code_environment[name]
        if change is not None and change.environment is not None:
            environment = dict(change.environment)
        reconfigured = (settings.timeout, settings.memory_mb, environment) != (
            spec.settings.timeout,
            spec.settings.memory_mb,
            spec.environment,
        )
        spec.settings = settings
        spec.environment = environment
        store: Any = self.runtime.store
        if hasattr(store, "lease_seconds"):  # a claimed event stays leased past its timeout
            longest = max(s.settings.timeout for s in self.runtime.router.functions.values())
            store.lease_seconds = max(store.lease_seconds, longest + 30)
        pool = self.runtime.invoker.states[name].pool
        if reconfigured and pool is not None:
            pool.reconfigure()

    def _settle_policy(self, name: str, overrides: Overrides) -> None:
        removed = set(overrides.removed_statements.get(name, ()))
        statements = [s for s in documents(self.code_policies[name]) if s.get("Sid") not in removed]
        statements += overrides.added_statements.get(name, [])
        spec = self.runtime.router.functions[name]
        if not statements:
            spec.resource_policy = None
            return
        try:
            spec.resource_policy = Policy.load(
                {"Version": "2012-10-17", "Statement": statements},
                resource_policy=True,
                origin=f"{name}.resource_policy",
            )
        except PolicyError as exc:
            raise invalid(str(exc)) from None

    def _check_revision(self, name: str, revision: str | None) -> None:
        if revision is not None and revision != self.revision(name):
            raise ControlError(
                412,
                "PreconditionFailedException",
                "The Revision Id provided does not match the latest Revision Id. Call the "
                "GetFunction/GetAlias API to retrieve the latest Revision Id",
            )


def documents(policy: Policy | None) -> list[dict[str, Any]]:
    """A resource policy's statements as written (none without a policy)."""
    return [] if policy is None else [s.document for s in policy.statements]


def permission_statement(name: str, request: dict[str, Any]) -> dict[str, Any]:
    """The statement ``AddPermission`` adds for ``request`` (its JSON body)."""
    sid, action, principal = (request.get(k) for k in ("StatementId", "Action", "Principal"))
    for field, value in (("StatementId", sid), ("Action", action), ("Principal", principal)):
        if not isinstance(value, str) or not value:
            raise invalid(f"{field} is required")
    assert isinstance(sid, str) and isinstance(action, str) and isinstance(principal, str)
    if not _SID.fullmatch(sid):
        raise invalid("StatementId must be 1 to 100 letters, digits, '-' or '_'")
    if not _ACTION.fullmatch(action):
        raise invalid(f"Action {action!r} is not a Lambda action (lambda:InvokeFunction...)")
    for field in ("SourceArn", "SourceAccount", "FunctionUrlAuthType", "PrincipalOrgID"):
        if request.get(field) is not None and not isinstance(request[field], str):
            raise invalid(f"{field} must be a string")
    if request.get("EventSourceToken") or request.get("PrincipalOrgID"):
        raise invalid("EventSourceToken and PrincipalOrgID are not supported by eventrouter")
    statement = Permission(
        principal=principal,
        action=action,
        source_arn=request.get("SourceArn"),
        source_account=request.get("SourceAccount"),
        sid=sid,
    ).statement(name)
    auth_type = request.get("FunctionUrlAuthType")
    if auth_type is not None:
        if auth_type not in ("NONE", "AWS_IAM") or action != INVOKE_URL:
            raise invalid("FunctionUrlAuthType is NONE or AWS_IAM, with lambda:InvokeFunctionUrl")
        conditions = statement.setdefault("Condition", {})
        conditions.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = auth_type
    try:  # the statement must parse as the guard will read it
        Policy.load(
            {"Version": "2012-10-17", "Statement": [statement]},
            resource_policy=True,
            origin="AddPermission",
        )
    except PolicyError as exc:
        raise invalid(str(exc)) from None
    return {"Sid": sid, **{k: v for k, v in statement.items() if k != "Sid"}}
