"""Permissions as functions declare them: resource policies, ``Permission`` statements and
execution roles, parsed once at registration (the registry's part of security; the checks
at run time are :mod:`eventrouter.security.guard`'s)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from eventrouter.arns import ACCOUNT, account_root, function_arn, role_arn, user_arn
from eventrouter.errors import ConfigError
from eventrouter.keywords import CheckedStructMeta
from eventrouter.security.policy import Policy, Principal

INVOKE = "lambda:InvokeFunction"
INVOKE_URL = "lambda:InvokeFunctionUrl"


class Permission(msgspec.Struct, frozen=True, kw_only=True, metaclass=CheckedStructMeta):
    """One statement of a function's resource policy, as Lambda's ``AddPermission`` makes it.

    ``principal``: ``"*"`` (anyone, for ``auth="NONE"`` routes), a user name or IAM ARN, an
    account id, or a service (``"sqs.amazonaws.com"``, ``"kafka.amazonaws.com"``...).
    """

    principal: str
    action: str = INVOKE
    source_arn: str | None = None
    source_account: str | None = None
    sid: str | None = None

    def statement(self, function: str) -> dict[str, Any]:
        principal: Any
        who = self.principal
        if who == "*":
            principal = "*"
        elif who.isdigit() and len(who) == 12:
            principal = {"AWS": account_root(who)}
        elif who.startswith("arn:"):
            principal = {"AWS": who}
        elif "." in who:
            principal = {"Service": who}
        else:
            principal = {"AWS": user_arn(who)}
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Principal": principal,
            "Action": self.action,
            "Resource": function_arn(function),
        }
        if self.sid:
            statement["Sid"] = self.sid
        condition: dict[str, Any] = {}
        if self.source_arn:
            condition["ArnLike"] = {"AWS:SourceArn": self.source_arn}
        if self.source_account:
            condition["StringEquals"] = {"AWS:SourceAccount": self.source_account}
        if condition:
            statement["Condition"] = condition
        return statement


def resource_policy(
    function: str, document: Any, permissions: Iterable[Permission]
) -> Policy | None:
    """A function's resource policy: its document (if any) and its permissions."""
    statements = []
    for i, permission in enumerate(permissions):
        if not isinstance(permission, Permission):
            raise ConfigError(
                f"function {function!r}: permissions[{i}]={permission!r} must be Permission(...)"
            )
        statements.append(permission.statement(function))
    base = None
    if document is not None:
        base = Policy.load(
            document, resource_policy=True, origin=_origin(document, f"{function}.resource_policy")
        )
    if not statements:
        return base
    extra = Policy.load(
        {"Version": "2012-10-17", "Statement": statements},
        resource_policy=True,
        origin=f"{function}.permissions",
    )
    return extra if base is None else base.extended(extra.statements)


def execution_role(function: str, document: Any) -> Policy | None:
    if document is None:
        return None
    return Policy.load(document, origin=_origin(document, f"{function}.role"))


def _origin(document: Any, default: str) -> str:
    return str(document) if isinstance(document, str) and "{" not in document else default


def role_principal(function: str) -> Principal:
    """The principal a function acts as: its execution role."""
    return Principal("AWS", role_arn(function), ACCOUNT)
