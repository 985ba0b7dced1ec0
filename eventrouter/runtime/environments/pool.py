"""Execution environments: functions run in their own processes (``isolation="process"``).

An environment is one process that runs a function's Init phase once and then serves one
invocation at a time while it stays warm. A :class:`Pool` per function keeps the warm ones,
starts a new one (a cold start) when none is free, so it grows with demand up to the
function's concurrency, and shuts down those idle for longer than ``idle_timeout``.

The router enforces what inline mode cannot: an invocation that overruns its timeout gets
its process group killed (CPU-bound code that never yields is stopped too); a process whose
resident memory passes ``memory_mb`` is killed and the invocation fails with
``Runtime.OutOfMemory``; a process that dies fails only the invocation it was running. The
killed environment is replaced by the next cold start.

Two kinds of process: a Python worker (:mod:`eventrouter.runtime.environments.worker`,
messages over a socket pair) for ``@on_event(..., isolation="process")``, and any command
speaking Lambda's Runtime API (:mod:`eventrouter.runtime.environments.runtime_api`) for
``router.external(...)``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from eventrouter.arns import REGION
from eventrouter.config import INIT_TIMEOUT
from eventrouter.context import log_stream_name
from eventrouter.errors import ConfigError, EventRouterError, FunctionError, Throttled
from eventrouter.lineage import DEPTH
from eventrouter.outcomes import (
    OUT_OF_MEMORY,
    error_document,
    init_timeout_error,
    result_of,
)
from eventrouter.runtime.environments.frames import (
    Call,
    Invoke,
    Reply,
    Result,
    Start,
)

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec
    from eventrouter.runtime.ports import CallerPort

from eventrouter.runtime.environments.environment import (
    EXIT_ERROR,
    SHUTDOWN_GRACE,
    WATCH_INTERVAL,
    Environment,
    EnvironmentGone,
    InitError,
    PythonEnvironment,
    Run,
    tree_rss_kb,
)
from eventrouter.runtime.environments.runtime_api import RuntimeApiEnvironment
from eventrouter.runtime.environments.snapstart import RestoredEnvironment, Template

log = structlog.get_logger("eventrouter")


class Pool:
    """The execution environments of one function."""

    def __init__(self, runtime: CallerPort, spec: FunctionSpec) -> None:
        self.runtime = runtime
        self.spec = spec
        self.idle: list[Environment] = []
        self.environments: set[Environment] = set()
        self.encoder = msgspec.msgpack.Encoder()
        self.memory_kb = spec.settings.memory_mb * 1024
        self.idle_timeout = spec.settings.idle_timeout
        self._changed = asyncio.Event()
        self._closing = False
        #: Busy environments started with a configuration since changed: stopped once free.
        self._stale: set[Environment] = set()
        #: SnapStart: the template environments are forked from (made on first need).
        self.snapstart = spec.settings.snapstart
        if self.snapstart and spec.command is not None:
            raise ConfigError(
                f"function {spec.name!r}: snapstart=True forks a Python template; an external "
                "command's process cannot be snapshotted"
            )
        self.template: Template | None = None
        self._template_lock = asyncio.Lock()
        #: Environments kept warm (provisioned concurrency), and the tasks starting them.
        self.provisioned = spec.settings.provisioned_concurrency
        self._provisioning: set[asyncio.Task[None]] = set()
        self._start: Start | None = None
        if spec.command is None:
            self._start = self._python_start(spec)

    # -- configuration -----------------------------------------------------------------------

    @staticmethod
    def _python_start(spec: FunctionSpec) -> Start:
        """What a Python environment imports; refused now if it could not import it."""
        module, qualname = importable(spec.handler, spec.name, "handler")
        init_module = init_qualname = None
        if spec.init is not None:
            init_module, init_qualname = importable(spec.init, spec.name, "init hook")
        main = sys.modules.get(module)
        return Start(
            function=spec.name,
            module=module,
            file=getattr(main, "__file__", None),
            qualname=qualname,
            init_module=init_module,
            init_qualname=init_qualname,
            sys_path=[os.path.abspath(p) if p else os.getcwd() for p in sys.path],
            memory_mb=spec.settings.memory_mb,
        )

    def reconfigure(self) -> None:
        """The function's configuration changed at run time (``UpdateFunctionConfiguration``):
        new environments get it; idle ones stop now, busy ones once their invocation ends."""
        memory_mb = self.spec.settings.memory_mb
        self.memory_kb = memory_mb * 1024
        if self._start is not None:
            self._start = msgspec.structs.replace(self._start, memory_mb=memory_mb)
        if self.template is not None:  # the next restore snapshots the new configuration
            asyncio.get_running_loop().create_task(self.template.stop())
            self.template = None
        self._stale = self.environments - set(self.idle)
        idle, self.idle = self.idle, []  # provisioned ones among them are replaced as they end
        for env in idle:
            if env.idle_timer is not None:
                env.idle_timer.cancel()
            asyncio.get_running_loop().create_task(env.stop())

    def environ(self) -> dict[str, str]:
        """The environment variables of a new process, with Lambda's names."""
        spec = self.spec
        env = dict(os.environ)
        env.update(
            AWS_LAMBDA_FUNCTION_NAME=spec.name,
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(spec.settings.memory_mb),
            AWS_LAMBDA_FUNCTION_TIMEOUT=str(int(spec.settings.timeout)),
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{spec.name}",
            AWS_LAMBDA_LOG_STREAM_NAME=log_stream_name(),
            PYTHONUNBUFFERED="1",  # a line printed before the result is read with it
            AWS_EXECUTION_ENV="eventrouter",
        )
        env.update(spec.environment)
        return env

    # -- serving -----------------------------------------------------------------------------

    async def invoke(self, invoke: Invoke, limit: float) -> Run:
        """Run one invocation in a warm environment, or in a new one (a cold start).

        A crash, the memory limit or a failed init come back as Lambda's error document in
        the result; a timeout as ``timed_out``.
        """
        init_duration: float | None = None
        if self.idle:  # provisioned environments are last: taken first
            env = self.idle.pop()
            if env.idle_timer is not None:
                env.idle_timer.cancel()
        else:
            env = self._new()
            try:
                init_duration = await asyncio.wait_for(env.start(), INIT_TIMEOUT)
            except (InitError, EnvironmentGone, TimeoutError, OSError) as exc:
                return Run(self._init_failed(env, exc, invoke.request_id))
        loop = asyncio.get_running_loop()
        began = time.monotonic()
        invoke.deadline_ms = int((time.time() + limit) * 1000)
        env.depth = DEPTH.get()  # what the handler invokes or sends is one deeper
        timer = loop.call_later(limit, env.kill, "timeout")
        env.watch = loop.call_later(WATCH_INTERVAL, self._watch, env)
        try:
            result = await env.invoke(invoke)
        except EnvironmentGone as exc:
            result = self._gone(env, str(exc), invoke.request_id)
        finally:
            timer.cancel()
            env.watch.cancel()
        run = Run(result, time.monotonic() - began, init_duration)
        if self.snapstart and init_duration is not None:  # a restore, not an init
            run.restore_duration, run.init_duration = init_duration, None
        if self.provisioned and not env.provisioned:
            self.runtime.metrics.add("ProvisionedConcurrencySpilloverInvocations", self.spec.name)
        if env.killed == "timeout":
            run.timed_out = True
        elif env.alive:
            peak = max(result.max_rss_kb, env.peak_rss_kb())
            env.max_rss_kb = max(env.max_rss_kb, peak)
            if peak > self.memory_kb:
                env.kill("oom")
                run.result = self._gone(env, "signal: killed", invoke.request_id)
            elif result.retire:
                env.kill("retired")
            else:
                self._release(env)
        run.max_memory_mb = -(-env.max_rss_kb // 1024) if env.max_rss_kb else None
        return run

    def _new(self) -> Environment:
        if self.spec.command is not None:
            env: Environment = RuntimeApiEnvironment(self, self.spec.command, self.spec.cwd)
        elif self.snapstart:
            assert self._start is not None
            env = RestoredEnvironment(self, self._start)
        else:
            assert self._start is not None
            env = PythonEnvironment(self, self._start)
        self.environments.add(env)
        self._changed_now()
        return env

    def _release(self, env: Environment) -> None:
        if self._closing:
            env.kill("shutdown")
            return
        if env in self._stale:  # its configuration is no longer the function's
            self._stale.discard(env)
            asyncio.get_running_loop().create_task(env.stop())
            return
        if env.provisioned:  # kept warm, and taken before on-demand ones
            self.idle.append(env)
            return
        env.idle_timer = asyncio.get_running_loop().call_later(self.idle_timeout, self._expire, env)
        self.idle.insert(0, env)

    def _expire(self, env: Environment) -> None:
        """Shut down an environment idle for ``idle_timeout`` (the Shutdown phase)."""
        if env in self.idle:
            self.idle.remove(env)
            log.debug("environment idle, shutting down", function=self.spec.name, pid=env.pid)
            asyncio.get_running_loop().create_task(env.stop())

    def _watch(self, env: Environment) -> None:
        """Sample a busy environment's memory; kill it past the limit."""
        if env.result is None or not env.alive:
            return
        rss = tree_rss_kb(env.pid)
        if rss > env.max_rss_kb:
            env.max_rss_kb = rss
        if rss > self.memory_kb:
            env.kill("oom")
        else:
            env.watch = asyncio.get_running_loop().call_later(WATCH_INTERVAL, self._watch, env)

    def _gone(self, env: Environment, how: str, request_id: str) -> Result:
        """The error of an invocation whose environment ended under it."""
        oom = env.killed == "oom"
        if oom:
            log.warning(
                "environment out of memory",
                function=self.spec.name,
                request_id=request_id,
                pid=env.pid,
                memory_mb=self.spec.settings.memory_mb,
                max_rss_mb=env.max_rss_kb // 1024,
            )
        elif env.killed is None:
            log.error(
                "environment exited",
                function=self.spec.name,
                pid=env.pid,
                exit=how,
                request_id=request_id,
            )
        return Result(
            error=error_document(
                OUT_OF_MEMORY if oom else EXIT_ERROR,
                f"RequestId: {request_id} Error: CallerPort exited with error: "
                + ("signal: killed" if oom else how),
                request_id,
            )
        )

    def _init_failed(self, env: Environment, exc: BaseException, request_id: str) -> Result:
        if isinstance(exc, InitError):
            error = dict(exc.error)
            error.update(requestId=request_id, stackTrace=error.get("stackTrace") or [])
        elif isinstance(exc, TimeoutError):
            error = init_timeout_error(request_id, INIT_TIMEOUT)
        else:
            error = error_document(
                EXIT_ERROR if isinstance(exc, EnvironmentGone) else "Runtime.StartError",
                f"RequestId: {request_id} Error: CallerPort exited with error: {exc}",
                request_id,
            )
        log.error("init failed", function=self.spec.name, request_id=request_id, error=error)
        self._abandon(env)
        return Result(error=error)

    def _abandon(self, env: Environment) -> None:
        """An environment whose start failed: forgotten at once if no process started
        (nothing will report its exit), else killed (its exit forgets it)."""
        if not env.started:
            env.closed()
            self.discard(env)
        else:
            env.kill("init")

    def discard(self, env: Environment) -> None:
        """Forget an environment whose process has ended (a provisioned one is replaced)."""
        if env.provisioned:
            self._spawn_provision()
        self.environments.discard(env)
        self._stale.discard(env)
        if env in self.idle:
            self.idle.remove(env)
        if env.idle_timer is not None:
            env.idle_timer.cancel()
        self._changed_now()

    async def serve_call(self, call: Call) -> Reply:
        """A handler's ``ctx.invoke`` / ``ctx.invoke_async``, checked against its role."""
        runtime = self.runtime
        try:
            runtime.guard.check_invoke_from(self.spec, call.function)
            if call.op == "invoke_async":
                request_id = await runtime.invoke_async(call.function, call.payload)
                return Reply(call.id, body=msgspec.json.encode(request_id))
            outcome = await runtime.invoke_outcome(call.function, call.payload)
            result_of(outcome)  # raises what the outcome stands for
            return Reply(call.id, body=outcome.response)
        except FunctionError as exc:
            return Reply(call.id, error_class=type(exc).__name__, error=exc.body)
        except Throttled as exc:
            return Reply(call.id, error_class="Throttled", error=exc.reason)
        except EventRouterError as exc:
            return Reply(call.id, error_class=type(exc).__name__, error=str(exc))

    async def snapshot(self) -> Template:
        """The function's SnapStart template, started (import and init, once) if needed;
        ``InitError`` / ``EnvironmentGone`` when it cannot start."""
        async with self._template_lock:
            template = self.template
            if template is None or not template.alive:
                assert self._start is not None
                template = self.template = Template(self, self._start)
                try:
                    await asyncio.wait_for(template.start(), INIT_TIMEOUT)
                except BaseException:
                    self.template = None
                    if template.started:
                        template.kill("init")
                    raise
            return template

    # -- provisioned concurrency -------------------------------------------------------------

    @property
    def provisioned_ready(self) -> int:
        """Provisioned environments started (busy or idle)."""
        return sum(1 for env in self.environments if env.provisioned and env.ready.done())

    @property
    def provisioned_busy(self) -> int:
        return sum(1 for env in self.environments if env.provisioned and env not in self.idle)

    def set_provisioned(self, count: int) -> None:
        """Keep ``count`` environments warm: more are started in the background; extras
        become on-demand ones (idle ones then shut down after ``idle_timeout``)."""
        self.provisioned = count
        kept = [env for env in self.environments if env.provisioned]
        for env in kept[count:]:
            env.provisioned = False
            if env in self.idle:
                self.idle.remove(env)
                self._release(env)
        self._spawn_provision()

    async def provision(self) -> None:
        """Start and initialise environments until ``provisioned`` are warm (the router
        waits for this before it is ready). An init that fails is logged; invocations then
        start environments on demand."""
        missing = self.provisioned - sum(1 for env in self.environments if env.provisioned)
        if missing <= 0 or self._closing:
            return
        starting = [self._new() for _ in range(missing)]
        for env in starting:
            env.provisioned = True
        results = await asyncio.gather(
            *(asyncio.wait_for(env.start(), INIT_TIMEOUT) for env in starting),
            return_exceptions=True,
        )
        for env, result in zip(starting, results, strict=True):
            if isinstance(result, BaseException):
                log.error(
                    "provisioned environment failed to start",
                    function=self.spec.name,
                    error=repr(result),
                )
                env.provisioned = False  # not replaced in a loop: the next one is on demand
                self._abandon(env)
            else:
                self._release(env)
        self._changed_now()

    def _spawn_provision(self) -> None:
        if self.provisioned and not self._closing:
            task = asyncio.get_running_loop().create_task(self.provision())
            self._provisioning.add(task)
            task.add_done_callback(self._provisioning.discard)

    # -- observing and stopping ----------------------------------------------------------------

    def _changed_now(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[Pool], bool]) -> None:
        """Wait until ``predicate(pool)`` holds (tests: idle shutdown, replacement)."""
        while not predicate(self):
            await self._changed.wait()

    @property
    def pids(self) -> list[int]:
        return sorted(env.pid for env in self.environments if env.started)

    async def close(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop every environment (SIGTERM, ``grace``, SIGKILL) and wait for them to exit."""
        self._closing = True
        for task in self._provisioning:
            task.cancel()
        envs = list(self.environments)
        if self.template is not None:
            envs.append(self.template)
        self.idle.clear()
        await asyncio.gather(*(env.stop(grace) for env in envs), return_exceptions=True)


def importable(target: Any, function: str, what: str) -> tuple[str, str]:
    """The module and qualified name a worker process imports ``target`` by."""
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        raise ConfigError(
            f"function {function!r}: isolation='process' imports the {what} in a new process, "
            f"so it must be a module-level function (it is {target!r})"
        )
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not target:
        raise ConfigError(
            f"function {function!r}: the {what} {module}.{qualname} is not what that name "
            "refers to in its module (decorated after registration?); isolation='process' "
            "needs to import it by name"
        )
    return module, qualname
