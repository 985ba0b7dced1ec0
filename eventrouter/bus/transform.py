"""What a rule's target receives: the event, ``input_path`` of it, or an input transformer's
template filled in (EventBridge's ``InputPath`` and ``InputTransformer``)."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from eventrouter.errors import ConfigError

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_PATH = re.compile(r"\$(?:\.[^.\[\]]+|\[\d+\])*\Z")
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()
_PREDEFINED = (
    "aws.events.rule-arn",
    "aws.events.rule-name",
    "aws.events.event.ingestion-time",
    "aws.events.event",
    "aws.events.event.json",
)
MAX_PATHS = 100
_json = msgspec.json.Encoder()


def check_path(path: object, field: str) -> str:
    """A JSONPath of EventBridge's subset: ``$``, ``.key`` and ``[index]`` steps."""
    if not isinstance(path, str) or not _PATH.match(path):
        raise ConfigError(f"{field}={path!r} is not a JSON path like '$.detail.order'")
    return path


def extract(event: Any, path: str) -> Any:
    """The value at ``path`` (``_MISSING`` when there is none)."""
    value = event
    for key, index in _STEP.findall(path[1:]):
        if key:
            if not isinstance(value, dict) or key not in value:
                return _MISSING
            value = value[key]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return _MISSING
            value = value[int(index)]
    return value


class Transformer:
    """``InputPathsMap`` + ``InputTemplate``, checked when the rule is registered.

    A placeholder between double quotes takes a string's text (escaped for JSON); anywhere
    else it takes the value as JSON. A path the event lacks gives ``null`` (nothing inside
    quotes). A template that is JSON once filled gives that JSON; else the text itself.
    """

    def __init__(self, spec: object) -> None:
        if not isinstance(spec, dict) or set(spec) - {"InputPathsMap", "InputTemplate"}:
            raise ConfigError(
                f"input_transformer={spec!r} takes InputPathsMap (optional) and InputTemplate"
            )
        template = spec.get("InputTemplate")
        if not isinstance(template, str) or not template:
            raise ConfigError("input_transformer: InputTemplate is required text")
        paths = spec.get("InputPathsMap") or {}
        if not isinstance(paths, dict) or len(paths) > MAX_PATHS:
            raise ConfigError(f"input_transformer: InputPathsMap takes at most {MAX_PATHS} paths")
        for name, path in paths.items():
            if not isinstance(name, str) or name.upper().startswith("AWS."):
                raise ConfigError(f"input_transformer: {name!r} is not a name of your own")
            check_path(path, f"InputPathsMap[{name!r}]")
        for match in _PLACEHOLDER.finditer(template):
            if match[1] not in paths and match[1] not in _PREDEFINED:
                raise ConfigError(
                    f"input_transformer: <{match[1]}> in InputTemplate is not in InputPathsMap"
                )
        self.template = template
        self.paths: dict[str, str] = dict(paths)

    def apply(self, event: dict[str, Any], raw: bytes, rule_name: str, rule_arn: str) -> bytes:
        values: dict[str, Any] = {name: extract(event, path) for name, path in self.paths.items()}
        values.update(
            {
                "aws.events.rule-arn": rule_arn,
                "aws.events.rule-name": rule_name,
                "aws.events.event.ingestion-time": event.get("time", ""),
                "aws.events.event": msgspec.Raw(raw),
                "aws.events.event.json": msgspec.Raw(raw),
            }
        )
        text = self.template
        out: list[str] = []
        last = 0
        for match in _PLACEHOLDER.finditer(text):
            if match[1] not in values:
                continue
            value = values[match[1]]
            quoted = (
                text[match.start() - 1 : match.start()] == '"'
                and text[match.end() : match.end() + 1] == '"'
            )
            out.append(text[last : match.start()])
            if value is _MISSING:
                out.append("" if quoted else "null")
            elif quoted and isinstance(value, str):
                out.append(_json.encode(value).decode()[1:-1])
            else:
                out.append(_json.encode(value).decode())
            last = match.end()
        out.append(text[last:])
        filled = "".join(out)
        try:
            msgspec.json.decode(filled)
        except msgspec.DecodeError:
            return _json.encode(filled)  # not JSON: the target gets the text as a string
        return filled.encode()


def target_input(
    event: dict[str, Any],
    raw: bytes,
    *,
    input_path: str | None,
    transformer: Transformer | None,
    rule_name: str,
    rule_arn: str,
) -> bytes:
    """The payload a rule's target is invoked with."""
    if transformer is not None:
        return transformer.apply(event, raw, rule_name, rule_arn)
    if input_path is not None:
        value = extract(event, input_path)
        return b"null" if value is _MISSING else _json.encode(value)
    return raw
