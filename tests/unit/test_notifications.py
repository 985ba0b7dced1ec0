"""The rules of SNS and S3 notifications (pure): filter policies as SNS evaluates them,
S3's event-name / prefix / suffix rules, Lambda's shapes with defaults, SNS's canonical
string and signatures, and settings errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eventrouter import S3, ConfigError, Sns
from eventrouter.sources.s3 import rules as s3_rules
from eventrouter.sources.sns import rules as sns_rules
from tests.lambda_models import check_event
from tests.sns_signing import Signer, notification

TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"


def message(attributes: dict[str, Any] | None = None, body: Any = "x") -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {**notification(TOPIC, text), "MessageAttributes": attributes or {}}


def test_attribute_policies_see_strings_numbers_and_arrays() -> None:
    source = Sns(
        TOPIC,
        filter_policy={
            "store": ["example_corp"],
            "price": [{"numeric": [">=", 10]}],
            "tags": ["red"],
        },
    )
    attributes = {
        "store": {"Type": "String", "Value": "example_corp"},
        "price": {"Type": "Number", "Value": "12.5"},
        "tags": {"Type": "String.Array", "Value": '["blue", "red"]'},
        "blob": {"Type": "Binary", "Value": "AAE="},
    }
    assert source.matches(message(attributes))
    assert not source.matches(message({**attributes, "price": {"Type": "Number", "Value": "9"}}))
    assert not source.matches(message({k: v for k, v in attributes.items() if k != "tags"}))
    assert not source.matches(message())  # a policy and no attributes: SNS drops it
    assert Sns(TOPIC).matches(message())  # no policy: everything


def test_payload_policies_see_the_json_message() -> None:
    source = Sns(
        TOPIC,
        filter_policy={"order": {"kind": ["book"], "total": [{"numeric": [">", 5]}]}},
        filter_policy_scope="MessageBody",
    )
    assert source.matches(message(body={"order": {"kind": "book", "total": 7}}))
    assert not source.matches(message(body={"order": {"kind": "pen", "total": 7}}))
    assert not source.matches(message(body="not json"))


def test_the_string_to_sign_and_both_signature_versions() -> None:
    signer = Signer()
    plain = message()
    text = sns_rules.string_to_sign(plain).decode()
    assert text.startswith("Message\nx\nMessageId\n") and "Subject" not in text
    assert text.endswith(f"TopicArn\n{TOPIC}\nType\nNotification\n")
    with_subject = sns_rules.string_to_sign({**plain, "Subject": "s"}).decode()
    assert "MessageId\n" in with_subject and "\nSubject\ns\nTimestamp\n" in with_subject
    key = sns_rules.public_key(signer.pem)
    for version in ("1", "2"):
        signed = signer.sign({**plain, "Subject": "hi"}, version=version)
        sns_rules.verify(signed, key)
        with pytest.raises(sns_rules.InvalidMessage, match="does not match"):
            sns_rules.verify({**signed, "Subject": "changed"}, key)
    with pytest.raises(sns_rules.InvalidMessage, match="SignatureVersion"):
        sns_rules.verify({**signer.sign(plain), "SignatureVersion": "3"}, key)
    with pytest.raises(sns_rules.InvalidMessage, match="not a PEM certificate"):
        sns_rules.public_key(b"-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-x.pem",
        "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com/not-a-certificate.txt",
    ],
)
def test_certificates_come_only_from_sns_hosts_over_https(url: str) -> None:
    with pytest.raises(sns_rules.InvalidMessage):
        sns_rules.check_cert_url(url, sns_rules.SNS_CERT_HOSTS)


def test_lambdas_sns_event() -> None:
    event = sns_rules.lambda_event(
        {**Signer().sign(message({"a": {"Type": "String", "Value": "1"}})), "Subject": "s"},
        f"{TOPIC}:sub",
    )
    check_event("sns", event)
    record = event["Records"][0]
    assert record["EventSubscriptionArn"] == f"{TOPIC}:sub"
    assert record["Sns"]["SigningCertUrl"].endswith(".pem")
    assert record["Sns"]["MessageAttributes"] == {"a": {"Type": "String", "Value": "1"}}


def test_s3_rules_and_lambdas_shape_with_defaults() -> None:
    source = S3(
        "media",
        events=["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"],
        prefix="in/",
        suffix=".jpg",
    )

    def record(name: str, key: str, bucket: str = "media") -> dict[str, Any]:
        return {
            "eventName": name,
            "eventTime": "2026-12-04T10:00:00.000Z",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1, "eTag": "e"}},
        }

    assert source.wanted(record("ObjectCreated:Put", "in/a+b.jpg"))
    assert source.wanted(record("ObjectCreated:CompleteMultipartUpload", "in/%C3%BC.jpg"))
    assert source.wanted(record("ObjectRemoved:Delete", "in/a.jpg"))
    assert not source.wanted(record("ObjectRemoved:DeleteMarkerCreated", "in/a.jpg"))
    assert not source.wanted(record("ObjectCreated:Put", "out/a.jpg"))
    assert not source.wanted(record("ObjectCreated:Put", "in/a.png"))
    assert not source.wanted(record("ObjectCreated:Put", "in/a.jpg", bucket="other"))
    (data,) = source.lambda_events(
        {"Records": [record("s3:ObjectCreated:Put", "in/my+ph%C3%B6to.jpg")]}
    )
    event = json.loads(data)
    check_event("s3", event)
    out = event["Records"][0]
    assert out["eventName"] == "ObjectCreated:Put"
    assert out["s3"]["object"]["key"] == "in/my+ph%C3%B6to.jpg"  # as S3 sent it
    assert s3_rules.key_of(out) == "in/my phöto.jpg"  # decoded once
    assert out["s3"]["bucket"]["arn"] == "arn:aws:s3:::media"
    assert out["userIdentity"] == {"principalId": "eventrouter"}
    assert out["s3"]["object"]["sequencer"]
    assert source.lambda_events({"Service": "Amazon S3", "Event": "s3:TestEvent"}) == []


@pytest.mark.parametrize(
    ("build", "message_"),
    [
        (lambda: Sns("orders"), "topic ARNs"),
        (lambda: Sns(TOPIC, delivery="email"), "delivery"),
        (lambda: Sns(TOPIC, delivery="http", queue="q"), "queue="),
        (lambda: Sns(TOPIC, path="/x"), "path="),
        (lambda: Sns((TOPIC, TOPIC + "2")), "several topics"),
        (lambda: Sns(TOPIC, filter_policy={"a": "not a list"}), "filter_policy"),
        (lambda: Sns(TOPIC, replay_window=10), "replay_window"),
        (lambda: S3("b", events=["ObjectCreated:*"]), "S3 event names"),
        (lambda: S3("b", delivery="webhook"), "token"),
        (lambda: S3("b", token="t"), "webhook"),
    ],
)
def test_bad_settings_are_clear_errors(build: Any, message_: str) -> None:
    with pytest.raises(ConfigError, match=message_):
        build()


def test_s3_events_through_eventbridge_are_filtered_and_passed_as_they_are() -> None:
    source = S3("media", delivery="eventbridge", events=["s3:ObjectCreated:Put"], prefix="in/")

    def event(detail_type: str, reason: str, key: str, bucket: str = "media") -> dict[str, Any]:
        return {
            "version": "0",
            "id": "1",
            "source": "aws.s3",
            "detail-type": detail_type,
            "account": "123456789012",
            "time": "2026-12-04T10:00:00Z",
            "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket},
                "object": {"key": key, "size": 1, "etag": "e", "sequencer": "1"},
                "request-id": "r",
                "requester": "123456789012",
                "reason": reason,
            },
        }

    wanted = event("Object Created", "PutObject", "in/a b.txt")
    assert [json.loads(e) for e in source.lambda_events(wanted)] == [wanted]
    assert source.lambda_events(event("Object Created", "CopyObject", "in/a")) == []
    assert source.lambda_events(event("Object Deleted", "DeleteObject", "in/a")) == []
    assert source.lambda_events(event("Object Created", "PutObject", "out/a")) == []
    assert source.lambda_events(event("Object Created", "PutObject", "in/a", "other")) == []
    family = S3("media", delivery="eventbridge", events=["s3:ObjectCreated:*"])
    assert family.lambda_events(event("Object Created", "SomethingNew", "x"))  # the family
    assert s3_rules.eventbridge_name(wanted) == "ObjectCreated:Put"
    with pytest.raises(Exception, match="EventBridge"):
        source.lambda_events({"Records": []})
