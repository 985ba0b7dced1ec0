"""Differential test: our policy evaluator against an independent one, on generated cases.

The reference is ``@cloud-copilot/iam-simulate`` (an IAM simulator written in TypeScript, with
every condition operator), pinned in ``tests/iam_reference/package-lock.json`` and installed by
``make test``. Thousands of generated (identity policy, resource policy, request) cases are
decided by both; every disagreement fails the test with the case that shows it.

A second reference, moto's ``IAMPolicy``, decides the subset it implements (Allow/Deny over
``Action``/``NotAction`` and ``Resource`` with ``*``); see ``test_moto_agrees_where_it_applies``.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from eventrouter.security.policy import Decision, Policy, Principal, Request, decide

ACCOUNT = "000000000000"
REFERENCE = Path(__file__).resolve().parents[1] / "iam_reference"

FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:charge"
OTHER_FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:refund"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"
OTHER_QUEUE = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:orders-dlq"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:receipts"
OBJECT = "arn:aws:s3:::audit-bucket/failed/abc.json"
BUS = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"

#: action -> resources it may be requested on
REQUESTS = {
    "lambda:InvokeFunction": [FUNCTION, OTHER_FUNCTION],
    "sqs:SendMessage": [QUEUE, OTHER_QUEUE],
    "sns:Publish": [TOPIC],
    "s3:PutObject": [OBJECT],
    "events:PutEvents": [BUS],
}
ACTION_PATTERNS = [
    "*",
    "lambda:*",
    "lambda:Invoke*",
    "lambda:InvokeFunction",
    "LAMBDA:invokefunction",
    "lambda:InvokeFunctio?",
    "sqs:*",
    "sqs:SendMessage",
    "sqs:Send?essage",
    "sqs:ReceiveMessage",
    "s3:Put*",
    "sns:Publish",
    "events:PutEvents",
]
RESOURCE_PATTERNS = [
    "*",
    FUNCTION,
    "arn:aws:lambda:*:*:function:ch*",
    "arn:aws:lambda:us-east-1:000000000000:function:charg?",
    "arn:aws:lambda:*:*:*",
    "arn:aws:lambda:us-*:function:charge",
    QUEUE,
    "arn:aws:sqs:*:*:orders*",
    "arn:aws:sqs:us-east-1:*:*",
    TOPIC,
    "arn:aws:s3:::audit-bucket/*",
    "arn:aws:s3:::audit-bucket/failed/a?c.json",
    BUS,
    "arn:aws:events:*:*:event-bus/*",
]
PRINCIPALS = [
    Principal("AWS", f"arn:aws:iam::{ACCOUNT}:user/billing", ACCOUNT),
    Principal("AWS", f"arn:aws:iam::{ACCOUNT}:role/charge", ACCOUNT),
    Principal("Service", "sqs.amazonaws.com"),
    Principal("Anonymous", "*"),
]
PRINCIPAL_ELEMENTS: list[Any] = [
    "*",
    {"AWS": "*"},
    {"AWS": f"arn:aws:iam::{ACCOUNT}:user/billing"},
    {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/charge", f"arn:aws:iam::{ACCOUNT}:user/other"]},
    {"AWS": ACCOUNT},
    {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    {"Service": "sqs.amazonaws.com"},
    {"Service": ["sns.amazonaws.com", "events.amazonaws.com"]},
]
#: condition key -> (operators, policy values, request values)
CONDITIONS: dict[str, tuple[list[str], list[Any], list[Any]]] = {
    "aws:SourceArn": (
        ["ArnLike", "ArnEquals", "ArnNotLike", "ArnNotEquals", "StringLike", "StringEquals"],
        [QUEUE, "arn:aws:sqs:*:*:orders", "arn:aws:sqs:us-east-1:*:*", "arn:aws:sns:*:*:*", TOPIC],
        [QUEUE, OTHER_QUEUE, TOPIC],
    ),
    "aws:SourceAccount": (
        ["StringEquals", "StringNotEquals", "StringLike"],
        [ACCOUNT, "111111111111", "0000*"],
        [ACCOUNT, "111111111111"],
    ),
    "aws:SourceIp": (
        ["IpAddress", "NotIpAddress"],
        ["10.0.0.0/8", "127.0.0.1/32", "192.168.1.0/24", "::1/128"],
        ["127.0.0.1", "10.1.2.3", "192.168.2.1", "::1"],
    ),
    "aws:CurrentTime": (
        [
            "DateGreaterThan",
            "DateLessThan",
            "DateEquals",
            "DateNotEquals",
            "DateGreaterThanEquals",
            "DateLessThanEquals",
        ],
        ["2026-01-01T00:00:00Z", "2030-06-01T12:00:00Z", "2026-11-22T10:00:00Z"],
        ["2026-11-22T10:00:00Z", "2025-03-01T00:00:00Z", "2031-01-01T00:00:00Z"],
    ),
    "aws:EpochTime": (
        ["NumericLessThan", "NumericGreaterThanEquals", "NumericEquals", "NumericNotEquals"],
        ["1800000000", "1700000000", 1763805600],
        ["1763805600", "1900000000"],
    ),
    "aws:SecureTransport": (["Bool"], ["true", "false", True], ["true", "false"]),
    "aws:PrincipalArn": (
        ["ArnLike", "StringLike", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"],
        [
            f"arn:aws:iam::{ACCOUNT}:user/*",
            f"arn:aws:iam::{ACCOUNT}:ROLE/CHARGE",
            f"arn:aws:iam::{ACCOUNT}:role/charge",
        ],
        [],  # set from the principal
    ),
    "aws:TagKeys": (
        ["ForAnyValue:StringEquals", "ForAllValues:StringEquals", "ForAnyValue:StringLike"],
        ["team", "cost*", ["team", "env"]],
        [["team"], ["team", "env"], ["cost-center", "owner"]],
    ),
}


def _condition(rng: random.Random) -> dict[str, Any]:
    block: dict[str, dict[str, Any]] = {}
    for _ in range(rng.randint(1, 2)):
        key = rng.choice(sorted(CONDITIONS))
        operators, values, _ = CONDITIONS[key]
        operator = rng.choice(operators)
        roll = rng.random()
        if roll < 0.15 and not operator.startswith("For"):
            operator += "IfExists"
        elif roll < 0.25:
            operator, value = "Null", rng.choice(["true", "false"])
            block.setdefault(operator, {})[key] = value
            continue
        value = rng.choice(values)
        if rng.random() < 0.3 and not isinstance(value, list):
            value = [value, rng.choice(values)]
            value = [v for v in value if not isinstance(v, list)]
        block.setdefault(operator, {})[key] = value
    return block


def _statement(
    rng: random.Random, resource_policy: bool, action: str, resource: str
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": rng.choice(["Allow", "Allow", "Allow", "Deny"])}
    actions = rng.sample(ACTION_PATTERNS, rng.randint(1, 3))
    if rng.random() < 0.5:  # aim at the request half of the time
        actions[0] = rng.choice([action, action.split(":")[0] + ":*", action[:-1] + "?"])
    statement["NotAction" if rng.random() < 0.15 else "Action"] = (
        actions[0] if len(actions) == 1 else actions
    )
    resources = rng.sample(RESOURCE_PATTERNS, rng.randint(1, 2))
    if rng.random() < 0.5:
        resources[0] = rng.choice([resource, resource[:-2] + "*", "*"])
    statement["NotResource" if rng.random() < 0.1 else "Resource"] = (
        resources[0] if len(resources) == 1 else resources
    )
    if resource_policy:
        if statement["Effect"] == "Deny" and rng.random() < 0.2:
            statement["NotPrincipal"] = rng.choice(PRINCIPAL_ELEMENTS[2:])
        else:
            statement["Principal"] = rng.choice(PRINCIPAL_ELEMENTS)
    if rng.random() < 0.4:
        statement["Condition"] = _condition(rng)
    return statement


def _document(
    rng: random.Random, resource_policy: bool, action: str, resource: str
) -> dict[str, Any]:
    statements = [
        _statement(rng, resource_policy, action, resource) for _ in range(rng.randint(1, 3))
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def generate(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        principal = rng.choice(PRINCIPALS)
        action = rng.choice(sorted(REQUESTS))
        resource = rng.choice(REQUESTS[action])
        context: dict[str, Any] = {}
        for key, (_, _, values) in CONDITIONS.items():
            if rng.random() < 0.6:
                if key == "aws:PrincipalArn":
                    if principal.kind == "AWS":
                        context[key] = principal.id
                elif values:
                    context[key] = rng.choice(values)
        identity = None
        if principal.kind == "AWS" and rng.random() < 0.8:
            identity = _document(rng, False, action, resource)
        resource_policy = None
        if rng.random() < 0.8 or identity is None:
            resource_policy = _document(rng, True, action, resource)
        cases.append(
            {
                "identity": identity,
                "resource_policy": resource_policy,
                "principal": principal.id,
                "kind": principal.kind,
                "action": action,
                "resource": resource,
                "account": ACCOUNT,
                "context": context,
            }
        )
    return cases


def ours(case: dict[str, Any]) -> str:
    kind = case["kind"]
    principal = Principal(kind, case["principal"], ACCOUNT if kind == "AWS" else None)
    request = Request(case["action"], case["resource"], principal, case["context"])
    identity = Policy.load(case["identity"]) if case["identity"] else None
    resource = (
        Policy.load(case["resource_policy"], resource_policy=True)
        if case["resource_policy"]
        else None
    )
    return {
        Decision.ALLOW: "Allowed",
        Decision.DENY: "ExplicitlyDenied",
        Decision.IMPLICIT_DENY: "ImplicitlyDenied",
    }[decide(request, identity, resource)]


def _reference(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (REFERENCE / "node_modules").is_dir():
        pytest.skip("the IAM reference is not installed: run `make test` (needs node and npm)")
    done = subprocess.run(
        [node, str(REFERENCE / "decide.mjs")],
        input=json.dumps(cases).encode(),
        capture_output=True,
        check=True,
        timeout=300,
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


@pytest.mark.parametrize("seed", [1, 2])
def test_evaluator_agrees_with_iam_simulate(seed: int) -> None:
    cases = generate(1500, seed)
    theirs = _reference(cases)
    refused = [(c, t["errors"]) for c, t in zip(cases, theirs, strict=True) if t["errors"]]
    assert not refused, f"the reference refused a generated case: {refused[0]}"
    outcomes = {"Allowed": 0, "ExplicitlyDenied": 0, "ImplicitlyDenied": 0}
    for case, their in zip(cases, theirs, strict=True):
        mine = ours(case)
        assert mine == their["result"], json.dumps({"ours": mine, **their, "case": case}, indent=1)
        outcomes[mine] += 1
    # The generator reaches every outcome, often (not a vacuous agreement on "deny").
    assert min(outcomes.values()) > len(cases) // 10, outcomes


def test_moto_agrees_where_it_applies() -> None:
    """moto's ``IAMPolicy`` on the identity-policy subset it implements.

    Left out, each for a moto limitation, not a difference of meaning: conditions (moto
    knows only ``StringEquals`` and turns a failed condition into a Deny), ``?`` (moto treats
    it as a regular-expression character), actions in other letter cases (moto compares them
    case-sensitively, IAM does not), ``NotResource`` (moto allows any statement without
    ``Resource``), and patterns whose ``*`` would reach across an ARN's ``:`` (moto matches the
    whole string, IAM each segment).
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult

    actions = [a for a in ACTION_PATTERNS if "?" not in a and a.lower() != "lambda:invokefunction"]
    actions.append("lambda:InvokeFunction")
    resources = [r for r in RESOURCE_PATTERNS if "?" not in r and "us-*:" not in r]
    rng = random.Random(7)
    seen = {"Allowed": 0, "ExplicitlyDenied": 0, "ImplicitlyDenied": 0}
    for _ in range(2000):
        action = rng.choice(sorted(REQUESTS))
        resource = rng.choice(REQUESTS[action])
        statements = []
        for _ in range(rng.randint(1, 3)):
            picked = rng.sample(actions, rng.randint(1, 2))
            if rng.random() < 0.4:
                picked[0] = action
            statements.append(
                {
                    "Effect": rng.choice(["Allow", "Allow", "Deny"]),
                    "NotAction" if rng.random() < 0.15 else "Action": picked,
                    "Resource": rng.sample(resources, rng.randint(1, 2)),
                }
            )
        document = {"Version": "2012-10-17", "Statement": statements}
        mine = Policy.load(document).evaluate(Request(action, resource))
        theirs = IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)
        expected = {
            PermissionResult.PERMITTED: Decision.ALLOW,
            PermissionResult.DENIED: Decision.DENY,
            PermissionResult.NEUTRAL: Decision.IMPLICIT_DENY,
        }[theirs]
        assert mine is expected, (document, action, resource)
        seen[
            {"Allow": "Allowed", "ExplicitDeny": "ExplicitlyDenied"}.get(
                mine.value, "ImplicitlyDenied"
            )
        ] += 1
    assert min(seen.values()) > 100, seen
