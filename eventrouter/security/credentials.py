"""Who may call the router over HTTP: SigV4 access keys and API keys (a file, the environment).

A credentials file (JSON, or TOML by its ``.toml`` suffix)::

    [[access_keys]]
    id = "AKIAEXAMPLEBILLING01"
    secret = "..."
    principal = "billing"          # a name (an IAM user of the router's account) or an ARN
    policy = "billing-policy.json" # optional: the principal's identity policy (a path or a
                                   # table), for Lambda's control-plane actions

    [[api_keys]]
    key = "..."
    principal = "mobile-app"

The environment adds one access key: ``EVENTROUTER_ACCESS_KEY_ID``,
``EVENTROUTER_SECRET_ACCESS_KEY`` and ``EVENTROUTER_PRINCIPAL`` (default ``"admin"``, with
the identity policy ``EVENTROUTER_POLICY``: JSON text or a path); and
``EVENTROUTER_CREDENTIALS`` names a file when the router is given none.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import structlog

from eventrouter.arns import ACCOUNT, user_arn
from eventrouter.errors import ConfigError
from eventrouter.security.policy import Policy, Principal

log = structlog.get_logger("eventrouter")


class AccessKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    secret: str
    principal: str
    #: The principal's identity policy: what it may do besides what resource policies allow.
    policy: Any = None

    def __repr__(self) -> str:  # never show the secret
        return f"AccessKey(id={self.id!r}, principal={self.principal!r})"


class ApiKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: str
    principal: str

    def __repr__(self) -> str:
        return f"ApiKey(principal={self.principal!r})"


class CredentialsFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    access_keys: list[AccessKey] = []
    api_keys: list[ApiKey] = []


def principal_for(name: str) -> Principal:
    """An IAM principal from a name (a user of the router's account) or an IAM ARN."""
    if name.startswith("arn:"):
        parts = name.split(":", 5)
        if len(parts) != 6 or parts[2] not in ("iam", "sts") or not parts[5]:
            raise ConfigError(
                f"principal {name!r} is not an IAM ARN (arn:aws:iam::ACCOUNT:user/NAME)"
            )
        return Principal("AWS", name, parts[4] or None)
    if not name or any(c in name for c in ":/* "):
        raise ConfigError(f"principal {name!r} must be a user name or an IAM ARN")
    return Principal("AWS", user_arn(name), ACCOUNT)


class Credentials:
    """The access keys and API keys the router accepts, each with its principal."""

    def __init__(
        self, access_keys: Sequence[AccessKey] = (), api_keys: Sequence[ApiKey] = ()
    ) -> None:
        self.secrets: dict[str, str] = {}
        self.principals: dict[str, Principal] = {}
        self.api_keys: dict[str, Principal] = {}
        #: Identity policies by principal ARN.
        self.policies: dict[str, Policy] = {}
        for key in access_keys:
            if not key.id or not key.secret:
                raise ConfigError("an access key needs a non-empty id and secret")
            self.secrets[key.id] = key.secret
            principal = self.principals[key.id] = principal_for(key.principal)
            if key.policy is not None:
                policy = Policy.load(key.policy, origin=f"policy of {key.principal}")
                known = self.policies.get(principal.id)
                self.policies[principal.id] = (
                    policy if known is None else known.extended(policy.statements)
                )
        for api_key in api_keys:
            if len(api_key.key) < 20:
                raise ConfigError(
                    f"the API key of {api_key.principal!r} is too short: use at least 20 characters"
                )
            self.api_keys[api_key.key] = principal_for(api_key.principal)

    def __repr__(self) -> str:
        return f"Credentials(access_keys={len(self.secrets)}, api_keys={len(self.api_keys)})"

    def secret_values(self) -> list[str]:
        """Every secret string (for the log redactor)."""
        return [*self.secrets.values(), *self.api_keys]

    @classmethod
    def load(cls, source: Any = None, environ: dict[str, str] | None = None) -> Credentials:
        """From ``source`` (a path, a :class:`Credentials`, or ``None``) and the environment."""
        if isinstance(source, Credentials):
            return source
        env = os.environ if environ is None else environ
        access_keys: list[AccessKey] = []
        api_keys: list[ApiKey] = []
        path = source if source is not None else env.get("EVENTROUTER_CREDENTIALS")
        if path:
            parsed = _read(Path(path))
            access_keys.extend(parsed.access_keys)
            api_keys.extend(parsed.api_keys)
        if env.get("EVENTROUTER_ACCESS_KEY_ID") or env.get("EVENTROUTER_SECRET_ACCESS_KEY"):
            access_keys.append(
                AccessKey(
                    id=env.get("EVENTROUTER_ACCESS_KEY_ID", ""),
                    secret=env.get("EVENTROUTER_SECRET_ACCESS_KEY", ""),
                    principal=env.get("EVENTROUTER_PRINCIPAL", "admin"),
                    policy=env.get("EVENTROUTER_POLICY") or None,
                )
            )
        return cls(access_keys, api_keys)


def _read(path: Path) -> CredentialsFile:
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"credentials file {path}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "credentials file is readable by other users: chmod 600 it",
            path=str(path),
            mode=oct(stat.S_IMODE(mode)),
        )
    try:
        if path.suffix == ".toml":
            return msgspec.toml.decode(data, type=CredentialsFile)
        return msgspec.json.decode(data, type=CredentialsFile)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"credentials file {path}: {exc}") from exc
