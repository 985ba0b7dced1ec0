"""The policy evaluator: IAM's decision logic, every condition operator, document errors."""

from __future__ import annotations

from typing import Any

import pytest

from eventrouter.security.conditions import OPERATORS
from eventrouter.security.policy import (
    ANONYMOUS,
    Decision,
    Policy,
    PolicyError,
    Principal,
    Request,
    decide,
    may_allow,
)

ACCOUNT = "000000000000"
QUEUE = "arn:aws:sqs:us-east-1:000000000000:orders"
BILLING = Principal("AWS", f"arn:aws:iam::{ACCOUNT}:user/billing", ACCOUNT)


def role(*statements: dict[str, Any]) -> Policy:
    return Policy.load({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str = "sqs:SendMessage", resource: str = QUEUE, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str = "sqs:SendMessage", resource: str = QUEUE, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def send(resource: str = QUEUE, **context: Any) -> Request:
    return Request("sqs:SendMessage", resource, BILLING, context)


# -- decision logic --------------------------------------------------------------------------


def test_nothing_matching_is_an_implicit_deny() -> None:
    assert role(allow("sns:Publish", "*")).evaluate(send()) is Decision.IMPLICIT_DENY


def test_explicit_deny_beats_allow_in_any_order_and_across_policies() -> None:
    assert role(allow(), deny()).evaluate(send()) is Decision.DENY
    assert role(deny(), allow()).evaluate(send()) is Decision.DENY
    resource_policy = Policy.load(
        {"Statement": [{**deny(), "Principal": "*"}]}, resource_policy=True
    )
    assert decide(send(), role(allow()), resource_policy) is Decision.DENY


@pytest.mark.parametrize(
    ("pattern", "action", "allowed"),
    [
        ("sqs:*", "sqs:SendMessage", True),
        ("sqs:Send*", "sqs:SendMessage", True),
        ("sqs:Send?essage", "sqs:SendMessage", True),
        ("sqs:Send?essage", "sqs:SendMMessage", False),
        ("SQS:sendmessage", "sqs:SendMessage", True),  # actions are case-insensitive
        ("*", "kafka:Produce", True),
        ("sqs:Receive*", "sqs:SendMessage", False),
    ],
)
def test_action_wildcards(pattern: str, action: str, allowed: bool) -> None:
    decision = role(allow(pattern)).evaluate(Request(action, QUEUE))
    assert (decision is Decision.ALLOW) is allowed


@pytest.mark.parametrize(
    ("pattern", "allowed"),
    [
        ("*", True),
        ("arn:aws:sqs:*:*:orders", True),
        ("arn:aws:sqs:us-east-1:000000000000:order?", True),
        ("arn:aws:sqs:us-east-1:000000000000:ORDERS", False),  # resources are case-sensitive
        ("arn:aws:sqs:*:*:orders-*", False),
    ],
)
def test_resource_wildcards(pattern: str, allowed: bool) -> None:
    assert (role(allow(resource=pattern)).evaluate(send()) is Decision.ALLOW) is allowed


def test_a_wildcard_does_not_reach_across_arn_segments() -> None:
    function = "arn:aws:lambda:us-east-1:000000000000:function:orders"
    invoke = Request("lambda:InvokeFunction", function)
    assert role(allow("lambda:*", "arn:aws:*:*:*:orders")).evaluate(invoke) is (
        Decision.IMPLICIT_DENY
    )
    assert role(allow("lambda:*", "arn:aws:*:*:*:*orders")).evaluate(invoke) is Decision.ALLOW


def test_not_action_and_not_resource() -> None:
    everything_but_receive = {"Effect": "Allow", "NotAction": "sqs:Receive*", "Resource": "*"}
    assert role(everything_but_receive).evaluate(send()) is Decision.ALLOW
    assert (
        role(everything_but_receive).evaluate(Request("sqs:ReceiveMessage", QUEUE))
        is Decision.IMPLICIT_DENY
    )
    not_dlq = {"Effect": "Allow", "Action": "sqs:*", "NotResource": "arn:aws:sqs:*:*:*-dlq"}
    assert role(not_dlq).evaluate(send()) is Decision.ALLOW
    assert role(not_dlq).evaluate(send(QUEUE + "-dlq")) is Decision.IMPLICIT_DENY


def test_resource_policy_principals() -> None:
    def invoke_policy(principal: Any) -> Policy:
        statement = {"Effect": "Allow", "Principal": principal, "Action": "lambda:*"}
        return Policy.load({"Statement": [{**statement, "Resource": "*"}]}, resource_policy=True)

    def invoke(who: Principal) -> Request:
        return Request("lambda:InvokeFunction", "arn:aws:lambda:x:1:function:f", who)

    sqs = Principal("Service", "sqs.amazonaws.com")
    assert invoke_policy("*").evaluate(invoke(ANONYMOUS)) is Decision.ALLOW
    assert invoke_policy({"AWS": BILLING.id}).evaluate(invoke(BILLING)) is Decision.ALLOW
    assert invoke_policy({"AWS": BILLING.id}).evaluate(invoke(ANONYMOUS)) is not Decision.ALLOW
    assert invoke_policy({"Service": "sqs.amazonaws.com"}).evaluate(invoke(sqs)) is Decision.ALLOW
    assert invoke_policy({"Service": "sns.amazonaws.com"}).evaluate(invoke(sqs)) is not (
        Decision.ALLOW
    )
    # Naming the account delegates to the account's identity policies: no allow on its own.
    by_account = invoke_policy({"AWS": ACCOUNT})
    assert decide(invoke(BILLING), None, by_account) is Decision.IMPLICIT_DENY
    lets_billing = role({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"})
    assert decide(invoke(BILLING), lets_billing, by_account) is Decision.ALLOW


# -- every condition operator ----------------------------------------------------------------

#: operator, policy value, a request value that satisfies it, one that does not
OPERATOR_CASES: list[tuple[str, Any, str, str]] = [
    ("StringEquals", "prod", "prod", "Prod"),
    ("StringNotEquals", "prod", "dev", "prod"),
    ("StringEqualsIgnoreCase", "PROD", "prod", "dev"),
    ("StringNotEqualsIgnoreCase", "PROD", "dev", "prod"),
    ("StringLike", "ord*-?", "orders-1", "orders-12"),
    ("StringNotLike", "ord*", "refunds", "orders"),
    ("NumericEquals", 10, "10.0", "11"),
    ("NumericNotEquals", "10", "11", "10"),
    ("NumericLessThan", "10", "9.5", "10"),
    ("NumericLessThanEquals", "10", "10", "10.5"),
    ("NumericGreaterThan", "10", "11", "10"),
    ("NumericGreaterThanEquals", "10", "10", "9"),
    ("DateEquals", "2026-11-22T10:00:00Z", "2026-11-22T11:00:00+01:00", "2026-11-22T10:00:01Z"),
    ("DateNotEquals", "2026-11-22T10:00:00Z", "2026-11-23T10:00:00Z", "1795341600"),
    ("DateLessThan", "2027-01-01", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"),
    ("DateLessThanEquals", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-01-02"),
    ("DateGreaterThan", "1700000000", "2026-01-01T00:00:00Z", "2020-01-01T00:00:00Z"),
    ("DateGreaterThanEquals", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2025-12-31"),
    ("Bool", True, "true", "false"),
    ("BinaryEquals", "QmluYXJ5", "QmluYXJ5", "QmluYXJz"),
    ("IpAddress", "10.0.0.0/8", "10.1.2.3", "11.0.0.1"),
    ("NotIpAddress", ["10.0.0.0/8", "::1/128"], "192.168.0.1", "::1"),
    ("ArnEquals", QUEUE, QUEUE, QUEUE + "-dlq"),
    ("ArnLike", "arn:aws:sqs:*:*:ord*", QUEUE, "arn:aws:sns:us-east-1:000000000000:orders"),
    ("ArnNotEquals", QUEUE, QUEUE + "-dlq", QUEUE),
    ("ArnNotLike", "arn:aws:sqs:*:*:*-dlq", QUEUE, QUEUE + "-dlq"),
]


def test_every_operator_has_a_case() -> None:
    assert {case[0] for case in OPERATOR_CASES} | {"Null"} == set(OPERATORS)


def _with(operator: str, value: Any) -> Policy:
    return role(allow(Condition={operator: {"test:Key": value}}))


@pytest.mark.parametrize(("operator", "value", "good", "bad"), OPERATOR_CASES)
def test_operator(operator: str, value: Any, good: str, bad: str) -> None:
    policy = _with(operator, value)
    assert policy.evaluate(send(**{"test:key": good})) is Decision.ALLOW
    assert policy.evaluate(send(**{"test:key": bad})) is Decision.IMPLICIT_DENY
    # Condition keys are case-insensitive.
    assert policy.evaluate(send(**{"TEST:KEY": good})) is Decision.ALLOW


@pytest.mark.parametrize(("operator", "value", "good", "bad"), OPERATOR_CASES)
def test_operator_on_a_missing_key(operator: str, value: Any, good: str, bad: str) -> None:
    negated = operator.startswith(("StringNot", "NumericNot", "DateNot", "Not", "ArnNot"))
    # A missing key fails a condition, unless the operator is negated (as in IAM).
    assert (_with(operator, value).evaluate(send()) is Decision.ALLOW) is negated
    # ...IfExists: true when the key is missing, the operator's own test when present.
    if_exists = _with(operator + "IfExists", value)
    assert if_exists.evaluate(send()) is Decision.ALLOW
    assert if_exists.evaluate(send(**{"test:key": good})) is Decision.ALLOW
    assert if_exists.evaluate(send(**{"test:key": bad})) is Decision.IMPLICIT_DENY


def test_null() -> None:
    absent = _with("Null", "true")
    present = _with("Null", "false")
    assert absent.evaluate(send()) is Decision.ALLOW
    assert absent.evaluate(send(**{"test:key": "x"})) is Decision.IMPLICIT_DENY
    assert present.evaluate(send(**{"test:key": "x"})) is Decision.ALLOW
    assert present.evaluate(send()) is Decision.IMPLICIT_DENY


def test_values_are_ored_keys_and_operators_anded() -> None:
    policy = role(
        allow(
            Condition={
                "StringEquals": {"a:x": ["1", "2"], "a:y": "y"},
                "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
            }
        )
    )
    context = {"a:x": "2", "a:y": "y", "aws:SourceIp": "10.0.0.1"}
    assert policy.evaluate(send(**context)) is Decision.ALLOW
    assert policy.evaluate(send(**{**context, "a:y": "n"})) is Decision.IMPLICIT_DENY
    assert policy.evaluate(send(**{**context, "aws:SourceIp": "8.8.8.8"})) is (
        Decision.IMPLICIT_DENY
    )


def test_set_qualifiers() -> None:
    any_of = _with("ForAnyValue:StringEquals", ["a", "b"])
    all_of = _with("ForAllValues:StringEquals", ["a", "b"])
    assert any_of.evaluate(send(**{"test:key": ["x", "b"]})) is Decision.ALLOW
    assert any_of.evaluate(send(**{"test:key": ["x", "y"]})) is Decision.IMPLICIT_DENY
    assert any_of.evaluate(send()) is Decision.IMPLICIT_DENY
    assert all_of.evaluate(send(**{"test:key": ["a", "b"]})) is Decision.ALLOW
    assert all_of.evaluate(send(**{"test:key": ["a", "x"]})) is Decision.IMPLICIT_DENY
    assert all_of.evaluate(send()) is Decision.ALLOW  # vacuously true, as in IAM


def test_deny_with_a_condition() -> None:
    policy = role(allow(), deny(Condition={"Bool": {"aws:SecureTransport": "false"}}))
    assert policy.evaluate(send(**{"aws:SecureTransport": "true"})) is Decision.ALLOW
    assert policy.evaluate(send(**{"aws:SecureTransport": "false"})) is Decision.DENY


def test_may_allow_is_false_only_when_no_context_could_allow() -> None:
    conditional = role(allow(Condition={"DateLessThan": {"aws:CurrentTime": "2000-01-01"}}))
    assert may_allow(send(), conditional)  # depends on the time: not refused at start-up
    assert not may_allow(send(), role(allow("sns:Publish", "*")))
    assert not may_allow(send(), role(allow(), deny()))
    assert may_allow(
        send(), role(allow(), deny(Condition={"Bool": {"aws:SecureTransport": "false"}}))
    )
    assert not may_allow(send())


# -- malformed documents name the bad element ------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"Version": "2012-10-17"}, "Statement: must be a statement"),
        ({"Version": "2019-01-01", "Statement": [allow()]}, "Version: must be one of"),
        ({"Statement": [allow()], "Extra": 1}, "Extra: unknown element"),
        ({"Statement": [{**allow(), "Effect": "Permit"}]}, 'Statement[0].Effect: must be "Allow"'),
        (
            {"Statement": [allow(), {"Effect": "Allow", "Resource": "*"}]},
            "Statement[1]: needs Action",
        ),
        ({"Statement": [{**allow(), "NotAction": "x:y"}]}, "has both Action and NotAction"),
        (
            {"Statement": [allow("SendMessage")]},
            "Statement[0].Action: 'SendMessage' is not an action",
        ),
        (
            {"Statement": [allow(resource="orders")]},
            "Statement[0].Resource: 'orders' is not an ARN",
        ),
        ({"Statement": [allow(action=[])]}, "Statement[0].Action: must not be an empty list"),
        (
            {"Statement": [allow(Condition={"StringEqualz": {"a": "b"}})]},
            "Condition.StringEqualz: unknown condition operator",
        ),
        (
            {"Statement": [allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.300/8"}})]},
            "Condition.IpAddress.aws:SourceIp: '10.0.0.300/8'",
        ),
        (
            {"Statement": [allow(Condition={"DateLessThan": {"aws:CurrentTime": "soon"}})]},
            "Condition.DateLessThan.aws:CurrentTime: 'soon' is not an ISO 8601 date",
        ),
        (
            {"Statement": [allow(Condition={"NumericEquals": {"n": "ten"}})]},
            "'ten' is not a number",
        ),
        (
            {"Statement": [allow(Condition={"Bool": {"aws:SecureTransport": "yes"}})]},
            'is not "true" or "false"',
        ),
        (
            {"Statement": [allow(Condition={"NullIfExists": {"k": "true"}})]},
            "NullIfExists: unknown condition operator",
        ),
        (
            {"Statement": [allow(Condition={"StringEquals": {"k": {"nested": 1}}})]},
            "Condition.StringEquals.k",
        ),
        (
            {"Statement": [{**allow(), "Sid": "a"}, {**allow(), "Sid": "a"}]},
            "Sid 'a' appears twice",
        ),
        (
            {"Statement": [{**allow(), "Principal": "*"}]},
            "an execution role (identity policy) has no Principal",
        ),
    ],
)
def test_malformed_documents(document: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.load(document, origin="role.json")
    assert str(caught.value).startswith("role.json: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("principal", "message"),
    [
        ({"AWS": "billing"}, "must be an account id, an IAM ARN"),
        ({"AWS": "arn:aws:iam::000000000000:user/*"}, "no wildcards in principals"),
        ({"Federated": "cognito"}, "unsupported principal type 'Federated'"),
        ("someone", 'must be "*" or an object'),
    ],
)
def test_malformed_principals(principal: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=r"Statement\[0\]\.Principal") as caught:
        Policy.load({"Statement": [{**allow(), "Principal": principal}]}, resource_policy=True)
    assert message in str(caught.value)


def test_a_policy_file(tmp_path: Any) -> None:
    path = tmp_path / "role.json"
    path.write_text(
        '{"Version": "2012-10-17", '
        '"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}'
    )
    assert Policy.load(str(path)).evaluate(send()) is Decision.ALLOW
    path.write_text('{"Statement": [')
    with pytest.raises(PolicyError, match=f"{path}: not a JSON document"):
        Policy.load(path)
    with pytest.raises(PolicyError, match="cannot read the policy"):
        Policy.load(tmp_path / "missing.json")
