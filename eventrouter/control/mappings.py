"""``Mappings``: a function's pull source as Lambda's event source mapping, started, stopped
and changed at run time.

Every function whose source is polled (Kafka, SQS, Kinesis, DynamoDB Streams: the engine runs
the policy of its model on the source's adapter) or is an embedded queue has one mapping, its
``UUID`` derived from the function's name (stable across restarts). ``UpdateEventSourceMapping``
with ``Enabled: false`` stops the source's policy as a shutdown would (in-flight batches
finish, checkpoints are committed, the consumer leaves its group); ``true`` starts a new one.
A new batch size or window restarts it with the source's settings changed. An embedded queue
is consumed by the asynchronous policy: disabling it leaves its events queued.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc
import msgspec
import structlog

from eventrouter.arns import function_arn
from eventrouter.contract.spec import Source, SourcePort, source_label
from eventrouter.control.overrides import MappingChange, edit, load
from eventrouter.errors import ConfigError, source_failure
from eventrouter.runtime.policies.port import PolicyPort
from eventrouter.runtime.policies.queue_poll import QueuePollPolicy
from eventrouter.runtime.policies.stream import StreamPolicy

if TYPE_CHECKING:
    from eventrouter.runtime.invoker import FunctionState
    from eventrouter.runtime.policies.asynchronous import AsyncPolicy

log = structlog.get_logger("eventrouter")


class MappingPort(PolicyPort, SourcePort, Protocol):
    """What the event source mappings and the control plane use of a running router."""

    #: One policy per pull-sourced function, running.
    @property
    def streams(self) -> list[Any]: ...


PULL_POLICIES: dict[str, type[StreamPolicy] | type[QueuePollPolicy]] = {
    "stream": StreamPolicy,
    "queue": QueuePollPolicy,
}
_NAMESPACE = uuid.UUID("6f1c2a8e-4f1b-4c7e-9d51-0e2f7a3b9c10")


def mapping_uuid(function: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, function_arn(function)))


class Mapping:
    """One function's pull source: its policy while it runs."""

    __slots__ = ("code_source", "enabled", "modified", "policy", "source_arn", "state", "uuid")

    def __init__(self, state: FunctionState) -> None:
        self.state = state
        #: The source as the code declares it: what changes are applied to.
        self.code_source = state.spec.source
        self.uuid = mapping_uuid(state.spec.name)
        self.enabled = True
        self.modified = time.time()
        self.policy: Any = None
        #: The source's ARN as its service reported it, once known.
        self.source_arn: str | None = None

    @property
    def name(self) -> str:
        return self.state.spec.name

    @property
    def embedded(self) -> bool:
        source = self.state.spec.source
        return source is not None and source.named_queue is not None


class Mappings:
    """The event source mappings of one router."""

    def __init__(
        self,
        runtime: MappingPort,
        async_policy: AsyncPolicy,
        state_dir: str | os.PathLike[str],
        worker: int = 0,
    ) -> None:
        self.runtime = runtime
        self.async_policy = async_policy
        self.state_dir = state_dir
        self.worker = worker
        self.by_uuid: dict[str, Mapping] = {}
        for state in runtime.invoker.states.values():
            source = state.spec.source
            if source is None:
                continue
            if source.model in PULL_POLICIES or source.named_queue:
                mapping = Mapping(state)
                self.by_uuid[mapping.uuid] = mapping
        self._task_group: anyio.abc.TaskGroup | None = None
        self._lock = asyncio.Lock()

    def restore(self) -> None:
        """Give each function back the source its code declares (the engine stops)."""
        for mapping in self.by_uuid.values():
            mapping.state.spec.source = mapping.code_source

    def find(self, key: str) -> Mapping | None:
        """The mapping of UUID ``key`` (or of the function named ``key``)."""
        return self.by_uuid.get(key) or self.by_uuid.get(mapping_uuid(key))

    # -- running -----------------------------------------------------------------------------

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Apply the stored changes, then start every enabled pull source."""
        self._task_group = task_group
        stored = load(self.state_dir).mappings
        for mapping in self.by_uuid.values():
            change = stored.get(mapping.name)
            if change is not None:
                try:
                    self._apply(mapping, change)
                except ConfigError as exc:
                    log.warning("mapping change not applied", function=mapping.name, error=str(exc))
            if mapping.enabled:
                await self._start(mapping)

    async def _start(self, mapping: Mapping) -> None:
        spec = mapping.state.spec
        source: Any = spec.source
        if mapping.embedded:
            self.async_policy.consume_queue(spec.name, source.named_queue, source.batch_size)
            return
        if self.worker != 0 and source.single_reader(self.runtime):
            log.info("stream read by worker 0 only", function=spec.name)
            return
        adapter: Any = source.adapter(spec, self.runtime)  # the transport of its model
        policy = PULL_POLICIES[source.model](self.runtime, mapping.state, adapter)
        mapping.policy = policy
        self.runtime.streams.append(policy)
        assert self._task_group is not None
        try:
            await self._task_group.start(policy.run)
        except Exception as exc:
            raise source_failure(source_label(source), spec.name, exc) from exc

    async def _stop(self, mapping: Mapping) -> None:
        spec = mapping.state.spec
        if mapping.embedded:
            assert spec.source is not None and spec.source.named_queue is not None
            self.async_policy.pause_queue(spec.name, spec.source.named_queue)
            return
        policy, mapping.policy = mapping.policy, None
        if policy is None:
            return
        policy.stop()
        await policy.wait_stopped()
        self.runtime.streams.remove(policy)

    # -- changing ----------------------------------------------------------------------------

    async def update(self, mapping: Mapping, change: MappingChange) -> None:
        """``UpdateEventSourceMapping``: applied at once (a running source is restarted with
        its new settings), kept for later starts. ``ConfigError`` for a value out of range."""
        async with self._lock:  # one change of a mapping at a time in this process
            with edit(self.state_dir) as stored:
                old = stored.mappings.get(mapping.name, MappingChange())
                merged = MappingChange(
                    enabled=change.enabled,
                    batch_size=old.batch_size if change.batch_size is None else change.batch_size,
                    batching_window=old.batching_window
                    if change.batching_window is None
                    else change.batching_window,
                    modified=time.time(),
                )
                self._source_for(mapping, merged)  # refused before it is kept
                stored.mappings[mapping.name] = merged
            await self._change(mapping, merged)
        log.info(
            "event source mapping changed",
            function=mapping.name,
            uuid=mapping.uuid,
            **msgspec.structs.asdict(merged),
        )

    async def reload(self) -> None:
        """Apply ``control.json`` as another worker of the router left it (``--workers``)."""
        stored = load(self.state_dir).mappings
        async with self._lock:
            for mapping in self.by_uuid.values():
                try:
                    await self._change(mapping, stored.get(mapping.name, MappingChange()))
                except ConfigError as exc:
                    log.warning("mapping change not applied", function=mapping.name, error=str(exc))

    async def _change(self, mapping: Mapping, change: MappingChange) -> None:
        """Apply ``change``: a source that runs is stopped, and started again if it stays
        enabled with other settings."""
        was_running = mapping.enabled
        source = mapping.state.spec.source
        self._apply(mapping, change)  # checks the values before anything stops
        changed = mapping.state.spec.source != source
        if was_running and (not mapping.enabled or changed):
            await self._stop(mapping)
        if mapping.enabled and (not was_running or changed):
            await self._start(mapping)

    def _apply(self, mapping: Mapping, change: MappingChange) -> None:
        mapping.state.spec.source = self._source_for(mapping, change)
        mapping.enabled = change.enabled
        mapping.modified = change.modified or mapping.modified

    @staticmethod
    def _source_for(mapping: Mapping, change: MappingChange) -> Source:
        """The code's source with the change's settings (``ConfigError`` out of range)."""
        source = mapping.code_source
        assert source is not None  # a mapping is made for a source only
        fields: dict[str, Any] = {}
        if change.batch_size is not None:
            fields["batch_size"] = change.batch_size
        if change.batching_window is not None:
            fields["batching_window"] = change.batching_window
        return source.with_changes(**fields) if fields else source

    # -- describing --------------------------------------------------------------------------

    def describe(self, mapping: Mapping) -> dict[str, Any]:
        """``EventSourceMappingConfiguration``, as Lambda returns it."""
        source = mapping.state.spec.source
        assert source is not None  # a mapping is made for a source only
        document: dict[str, Any] = {
            "UUID": mapping.uuid,
            "BatchSize": source.batch_size,
            "FunctionArn": function_arn(mapping.name),
            "LastModified": mapping.modified,
            "LastProcessingResult": "OK" if mapping.enabled else "No records processed",
            "State": "Enabled" if mapping.enabled else "Disabled",
            "StateTransitionReason": "USER_INITIATED",
        }
        arns = source.source_arns()
        if arns:
            document["EventSourceArn"] = arns[0]
        document.update(source.mapping_document())
        # A polled queue's ARN as its service reported it, once known.
        if isinstance(mapping.policy, QueuePollPolicy) and mapping.policy.source_arn:
            mapping.source_arn = mapping.policy.source_arn
        if mapping.source_arn:
            document["EventSourceArn"] = mapping.source_arn
        return document
