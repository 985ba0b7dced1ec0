"""IAM-style policy documents: parsed once, checked with the path of a bad element, evaluated.

One evaluator with IAM's logic serves both kinds of document:

- a **resource policy** of a function (who may invoke it: ``Principal`` / ``NotPrincipal``);
- an **identity policy**, the execution role of a function (what it may do).

>>> role = Policy.load({"Version": "2012-10-17", "Statement": [
...     {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:*:*:orders"}]})
>>> role.evaluate(Request("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:orders")) is Decision.ALLOW
True

Evaluation: an explicit ``Deny`` beats any ``Allow``; nothing matching is an implicit deny.
``*`` and ``?`` are wildcards in actions (case-insensitive) and resources (case-sensitive).
Condition keys are case-insensitive; a condition on a key the request lacks is false, except
for the negated operators (``StringNotEquals``...), ``...IfExists`` and ``Null``, as in IAM.
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventrouter.errors import PolicyError
from eventrouter.security.conditions import (
    Condition,
    arn_matches,
    matches,
    parse_condition_block,
)

VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_ACTION = re.compile(r"\*|[A-Za-z0-9\-]+:[A-Za-z0-9*?\-]+")
_ACCOUNT_ID = re.compile(r"\d{12}")


class Decision(enum.Enum):
    ALLOW = "Allow"
    DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request: an IAM identity (``AWS``), a service, or the anonymous caller."""

    kind: str  # "AWS" | "Service" | "Anonymous"
    id: str
    account: str | None = None


ANONYMOUS = Principal("Anonymous", "*")


@dataclass(slots=True)
class Request:
    """An action on a resource by a principal, with its condition context.

    Context keys are matched case-insensitively; values are strings or lists of strings.
    """

    action: str
    resource: str
    principal: Principal | None = None
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.context = {k.lower(): v for k, v in self.context.items()}


def _strings(value: Any, path: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if not value and not allow_empty:
            raise PolicyError(f"{path}: must not be an empty list")
        return tuple(value)
    raise PolicyError(f"{path}: must be a string or a list of strings, not {value!r}")


@dataclass(frozen=True, slots=True)
class PrincipalMatcher:
    """A ``Principal`` element: ``"*"`` or ``{"AWS": ..., "Service": ...}``."""

    everyone: bool = False
    accounts: frozenset[str] = frozenset()
    arns: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, value: Any, path: str) -> PrincipalMatcher:
        if value == "*":
            return cls(everyone=True)
        if not isinstance(value, dict) or not value:
            raise PolicyError(f'{path}: must be "*" or an object like {{"AWS": [...]}}')
        accounts: set[str] = set()
        arns: set[str] = set()
        services: set[str] = set()
        everyone = False
        for kind, ids in value.items():
            where = f"{path}.{kind}"
            if kind == "AWS":
                for ident in _strings(ids, where):
                    if ident == "*":
                        everyone = True
                    elif _ACCOUNT_ID.fullmatch(ident):
                        accounts.add(ident)
                    elif ident.startswith("arn:"):
                        parts = ident.split(":", 5)
                        if len(parts) != 6 or parts[2] not in ("iam", "sts"):
                            raise PolicyError(f"{where}: {ident!r} is not an IAM principal ARN")
                        if "*" in ident or "?" in ident:
                            raise PolicyError(
                                f'{where}: {ident!r}: no wildcards in principals (only "*")'
                            )
                        if parts[5] == "root":
                            accounts.add(parts[4])
                        else:
                            arns.add(ident)
                    else:
                        raise PolicyError(
                            f'{where}: {ident!r} must be an account id, an IAM ARN or "*"'
                        )
            elif kind == "Service":
                for ident in _strings(ids, where):
                    if not ident or "*" in ident:
                        raise PolicyError(f"{where}: {ident!r} is not a service principal")
                    services.add(ident)
            else:
                raise PolicyError(
                    f'{path}: unsupported principal type {kind!r}; use "AWS" or "Service"'
                )
        return cls(everyone, frozenset(accounts), frozenset(arns), frozenset(services))

    def matches(self, principal: Principal | None, *, directly: bool = False) -> bool:
        """Whether the element names ``principal``; ``directly``: by ``"*"``, its ARN or its
        service, not only through its account (which delegates to the account's own
        identity policies, so it does not allow on its own)."""
        if principal is None:
            return False
        if self.everyone:
            return True
        if principal.kind == "Service":
            return principal.id in self.services
        if principal.kind == "AWS":
            return principal.id in self.arns or (
                not directly and principal.account in self.accounts
            )
        return False


@dataclass(frozen=True, slots=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    principal: PrincipalMatcher | None
    not_principal: bool
    conditions: tuple[Condition, ...]
    sid: str | None = None
    #: The statement as written (``GetPolicy`` answers with it).
    document: Any = field(default=None, compare=False, hash=False)

    def applies(self, request: Request, *, ignore_conditions: bool = False) -> bool:
        if self.principal is not None:
            # An Allow of a resource policy grants only to the principals it names directly.
            directly = self.effect == "Allow" and not self.not_principal
            if self.principal.matches(request.principal, directly=directly) == self.not_principal:
                return False
        hit = any(matches(a, request.action, True) for a in self.actions)
        if hit == self.not_action:
            return False
        hit = any(arn_matches(r, request.resource) for r in self.resources)
        if hit == self.not_resource:
            return False
        if ignore_conditions:
            return True
        return all(c.holds(request.context) for c in self.conditions)


def _statement(raw: Any, path: str, resource_policy: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: a statement must be an object")
    for key in raw:
        if key not in _STATEMENT_KEYS:
            raise PolicyError(f"{path}.{key}: unknown element")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{path}.Sid: must be a string")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f'{path}.Effect: must be "Allow" or "Deny", not {effect!r}')

    def one_of(name: str, negated: str) -> tuple[Any, bool, str]:
        if name in raw and negated in raw:
            raise PolicyError(f"{path}: has both {name} and {negated}")
        if name in raw:
            return raw[name], False, name
        if negated in raw:
            return raw[negated], True, negated
        raise PolicyError(f"{path}: needs {name} or {negated}")

    value, not_action, name = one_of("Action", "NotAction")
    actions = _strings(value, f"{path}.{name}")
    for action in actions:
        if not _ACTION.fullmatch(action):
            raise PolicyError(
                f"{path}.{name}: {action!r} is not an action (service:Action, wildcards * and ?)"
            )
    value, not_resource, name = one_of("Resource", "NotResource")
    resources = _strings(value, f"{path}.{name}")
    for resource in resources:
        if resource != "*" and not (resource.startswith("arn:") and resource.count(":") >= 5):
            raise PolicyError(
                f"{path}.{name}: {resource!r} is not an ARN "
                '(arn:partition:service:region:account:...) or "*"'
            )
    principal = None
    not_principal = False
    if resource_policy:
        value, not_principal, name = one_of("Principal", "NotPrincipal")
        principal = PrincipalMatcher.parse(value, f"{path}.{name}")
    elif "Principal" in raw or "NotPrincipal" in raw:
        raise PolicyError(f"{path}: an execution role (identity policy) has no Principal")
    conditions: tuple[Condition, ...] = ()
    if "Condition" in raw:
        conditions = parse_condition_block(raw["Condition"], f"{path}.Condition")
    return Statement(
        effect,
        actions,
        not_action,
        resources,
        not_resource,
        principal,
        not_principal,
        conditions,
        sid,
        raw,
    )


class Policy:
    """A parsed policy document: its statements and where it came from (for messages)."""

    __slots__ = ("origin", "resource_policy", "statements")

    def __init__(
        self, statements: Iterable[Statement], *, origin: str, resource_policy: bool
    ) -> None:
        self.statements = tuple(statements)
        self.origin = origin
        self.resource_policy = resource_policy

    def __repr__(self) -> str:
        return f"Policy({self.origin!r}, statements={len(self.statements)})"

    @classmethod
    def load(
        cls,
        document: Any,
        *,
        resource_policy: bool = False,
        origin: str | None = None,
    ) -> Policy:
        """Parse a document: a dict, JSON text, or the path of a JSON file.

        Raises :class:`PolicyError` naming the origin and the path of the bad element, e.g.
        ``role.json: Statement[1].Condition.StringEqualz: unknown condition operator``.
        """
        if isinstance(document, Policy):
            return document
        if isinstance(document, (str, os.PathLike)) and not str(document).lstrip().startswith("{"):
            file = Path(document)
            origin = origin or str(file)
            try:
                text = file.read_text()
            except OSError as exc:
                raise PolicyError(f"{origin}: cannot read the policy: {exc}") from exc
            document = text
        if isinstance(document, str):
            origin = origin or "policy"
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise PolicyError(f"{origin}: not a JSON document: {exc}") from exc
        origin = origin or "policy"
        if not isinstance(document, dict):
            raise PolicyError(f"{origin}: a policy document must be a JSON object")
        for key in document:
            if key not in ("Version", "Id", "Statement"):
                raise PolicyError(f"{origin}: {key}: unknown element")
        version = document.get("Version", "2008-10-17")
        if version not in VERSIONS:
            raise PolicyError(
                f"{origin}: Version: must be one of {', '.join(VERSIONS)}, not {version!r}"
            )
        raw = document.get("Statement")
        if isinstance(raw, dict):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            raise PolicyError(
                f"{origin}: Statement: must be a statement or a non-empty list of them"
            )
        statements = [
            _statement(item, f"{origin}: Statement[{i}]", resource_policy)
            for i, item in enumerate(raw)
        ]
        sids = [s.sid for s in statements if s.sid]
        duplicate = next((s for s in sids if sids.count(s) > 1), None)
        if duplicate is not None:
            raise PolicyError(f"{origin}: Statement: Sid {duplicate!r} appears twice")
        return cls(statements, origin=origin, resource_policy=resource_policy)

    def extended(self, statements: Iterable[Statement]) -> Policy:
        return Policy(
            [*self.statements, *statements],
            origin=self.origin,
            resource_policy=self.resource_policy,
        )

    def evaluate(self, request: Request) -> Decision:
        """This policy's decision alone: explicit deny, allow, or implicit deny."""
        allowed = False
        for statement in self.statements:
            if statement.applies(request):
                if statement.effect == "Deny":
                    return Decision.DENY
                allowed = True
        return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def decide(request: Request, *policies: Policy | None) -> Decision:
    """The decision of every policy that governs a request in one account.

    An explicit Deny in any policy wins; else an Allow in any (identity or resource) policy
    allows; else the request is implicitly denied.
    """
    allowed = False
    for policy in policies:
        if policy is None:
            continue
        decision = policy.evaluate(request)
        if decision is Decision.DENY:
            return decision
        allowed = allowed or decision is Decision.ALLOW
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def may_allow(request: Request, *policies: Policy | None) -> bool:
    """Whether some condition context could allow the request: ``False`` when an unconditional
    Deny applies or no Allow applies whatever its conditions (a start-up check)."""
    possible = False
    for policy in policies:
        for statement in policy.statements if policy is not None else ():
            if statement.applies(request, ignore_conditions=True):
                if statement.effect == "Deny" and not statement.conditions:
                    return False
                possible = possible or statement.effect == "Allow"
    return possible
