"""SNS messages: Lambda's SNS event, the view a subscription filter policy sees, and SNS's
message signatures (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA).

Pure functions and one certificate cache; the deliveries that use them (an SQS queue
subscribed to the topic, an HTTP subscription endpoint) are :mod:`eventrouter.sources.feed`'s.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import urlsplit

import msgspec

from eventrouter.errors import EventRouterError

#: Where SNS's signing certificates come from (``SigningCertURL``'s host).
SNS_CERT_HOSTS = r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$"

_decoder = msgspec.json.Decoder()

#: The fields signed, in order, per message type (SNS's documented canonical string).
_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SUBSCRIPTION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


class InvalidMessage(EventRouterError):
    """An SNS message that is malformed, unsigned, wrongly signed or not for this router."""


def parse_envelope(body: bytes | str) -> dict[str, Any]:
    """SNS's JSON document (an HTTP POST's body, or an SQS message's from a subscription)."""
    try:
        message = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidMessage(f"not an SNS message: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("Type"), str):
        raise InvalidMessage("not an SNS message: no Type")
    for field in ("MessageId", "TopicArn", "Timestamp"):
        if not isinstance(message.get(field), str):
            raise InvalidMessage(f"not an SNS message: no {field}")
    return message


def lambda_event(message: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """Lambda's SNS event for one notification (SNS invokes with one record)."""
    attributes = {
        name: {"Type": value.get("Type"), "Value": value.get("Value")}
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": message["Type"],
                    "MessageId": message["MessageId"],
                    "TopicArn": message["TopicArn"],
                    "Subject": message.get("Subject"),
                    "Message": message.get("Message", ""),
                    "Timestamp": message["Timestamp"],
                    "SignatureVersion": message.get("SignatureVersion"),
                    "Signature": message.get("Signature"),
                    "SigningCertUrl": message.get("SigningCertURL"),
                    "UnsubscribeUrl": message.get("UnsubscribeURL"),
                    "MessageAttributes": attributes,
                },
            }
        ]
    }


def attribute_view(message: dict[str, Any]) -> dict[str, Any]:
    """What an attribute filter policy sees: ``String`` as text, ``Number`` as a number,
    ``String.Array`` as its list; binary attributes are not matched (as SNS)."""
    view: dict[str, Any] = {}
    for name, attribute in (message.get("MessageAttributes") or {}).items():
        kind, value = attribute.get("Type", ""), attribute.get("Value")
        if kind.startswith("Binary") or value is None:
            continue
        if kind.startswith("Number"):
            try:
                view[name] = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                view[name] = value
        elif kind == "String.Array":
            try:
                view[name] = _decoder.decode(value)
            except msgspec.DecodeError:
                view[name] = value
        else:
            view[name] = value
    return view


def body_view(message: dict[str, Any]) -> Any:
    """What a payload (``MessageBody``) filter policy sees: the message as JSON, or nothing."""
    try:
        return _decoder.decode(message.get("Message", ""))
    except msgspec.DecodeError:
        return None  # a message that is not JSON matches no payload policy


def string_to_sign(message: dict[str, Any]) -> bytes:
    """SNS's canonical string of a message: ``name\\nvalue\\n`` for each signed field."""
    kind = message["Type"]
    fields = _NOTIFICATION_FIELDS if kind == "Notification" else _SUBSCRIPTION_FIELDS
    parts = []
    for field in fields:
        value = message.get(field)
        if value is None:
            if field == "Subject":
                continue  # signed only when the message has one
            raise InvalidMessage(f"unsigned SNS message: no {field}")
        parts.append(f"{field}\n{value}\n")
    return "".join(parts).encode()


def check_sns_url(url: str, hosts: str) -> None:
    """A URL SNS gave (signing certificate, SubscribeURL) must be HTTPS on an allowed host."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not re.fullmatch(hosts, parts.hostname or ""):
        raise InvalidMessage(f"not an SNS URL (HTTPS on {hosts}): {url!r}")


def check_cert_url(url: str, hosts: str) -> None:
    """The signing certificate must come over HTTPS from an allowed host, as a ``.pem``."""
    check_sns_url(url, hosts)
    if not urlsplit(url).path.endswith(".pem"):
        raise InvalidMessage(f"signing certificate URL is not a .pem: {url!r}")


def public_key(certificate_pem: bytes) -> Any:
    """The RSA public key of a signing certificate (``InvalidMessage`` if it has another):
    parsed once per certificate, as the feed caches it (parsing costs more than verifying)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    except ValueError:
        raise InvalidMessage("the signing certificate is not a PEM certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidMessage("the signing certificate's key is not RSA")
    return key


def verify(message: dict[str, Any], key: Any) -> None:
    """Check the message's signature with the certificate's ``key`` (:func:`public_key`;
    ``InvalidMessage`` if wrong)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    version = message.get("SignatureVersion")
    if version not in ("1", "2"):
        raise InvalidMessage(f"unknown SignatureVersion {version!r}")
    try:
        signature = base64.b64decode(message.get("Signature") or "", validate=True)
    except ValueError:
        raise InvalidMessage("the Signature is not base64") from None
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    try:
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise InvalidMessage("the signature does not match the message") from None
