"""``FunctionSpec``: one registered function, as every layer above the registry sees it.

It lives below the sources and the registry (which build it) so that adapters, policies and
the invoker can name it without importing the registry, which imports every source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from eventrouter.signature import HandlerForm, decoder_for, handler_form

if TYPE_CHECKING:
    from eventrouter.config import FunctionSettings
    from eventrouter.contract.source import Source
    from eventrouter.security.policy import Policy


@dataclass(slots=True, eq=False)
class FunctionSpec:
    """One registered function: its handler, settings, source and payload codec."""

    name: str
    handler: Callable[..., Any]
    settings: FunctionSettings
    source: Source | None
    is_async: bool
    takes_context: bool
    payload_type: Any
    #: Decodes one event (or one message of a batch) into what the handler asks for.
    decoder: msgspec.json.Decoder[Any]
    #: Decodes the payload of a direct invocation (a list of messages for a batch handler).
    event_decoder: msgspec.json.Decoder[Any]
    batch: bool
    #: An HTTP-sourced handler that asks for API Gateway's event rather than a typed body.
    http_raw: bool = False
    #: The handler's return annotation (for the OpenAPI document).
    return_type: Any = None
    init: Callable[[], Any] | None = None
    #: Seconds spent importing the handler's module, when the loader measured it.
    import_duration: float = 0.0
    #: Who may invoke the function (``None``: nobody, when permissions are enforced).
    resource_policy: Policy | None = None
    #: What the function may do (``None``: nothing, when permissions are enforced).
    role: Policy | None = None
    #: ``router.external``: the command of a process speaking the Runtime API.
    command: tuple[str, ...] | None = None
    #: Environment variables added for the function's processes, and their directory.
    environment: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def isolated(self) -> bool:
        """Whether the function runs in execution environments of its own."""
        return self.settings.isolation == "process"

    @property
    def module(self) -> str:
        return getattr(self.handler, "__module__", "?")


def pull_decoder(spec: FunctionSpec) -> tuple[HandlerForm, msgspec.json.Decoder[Any] | None]:
    """The form of a pull-source handler and the decoder of one record (``None``: raw)."""
    form, item = handler_form(spec.payload_type)
    if form == "raw":
        return form, None
    if form == "record":
        return form, spec.decoder
    return form, decoder_for(item, spec.name)
