"""S3 event notifications: Lambda's S3 event from what a notification carries (S3's own, or
an S3-compatible store's webhook: MinIO, Ceph), and S3's event-name, prefix and suffix
filters.

S3 sends an object's key URL-encoded (``quote_plus``: a space is ``+``); Lambda's event
carries it as sent, so a handler decodes it once (``urllib.parse.unquote_plus``), and
eventrouter neither decodes nor encodes it again. Filters compare the decoded key, as S3's
filter rules name keys.

Fields a notification may lack are filled so that every event has Lambda's shape
(:data:`DEFAULTS`): ``eventVersion`` ``2.1``, ``userIdentity.principalId`` and the bucket's
``ownerIdentity.principalId`` ``"eventrouter"``, ``requestParameters.sourceIPAddress``
``s3.amazonaws.com``, ``responseElements`` with empty request ids, ``sequencer`` from the
event time (hexadecimal nanoseconds, increasing as S3's do for one key), the bucket's ARN
from its name.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

#: S3's test message when a notification configuration is saved: recognised and dropped.
TEST_EVENT = "s3:TestEvent"
#: What fills a field the notification lacks.
DEFAULTS = {
    "principal": "eventrouter",
    "source_ip": "s3.amazonaws.com",
}


def is_test_event(document: Any) -> bool:
    return isinstance(document, dict) and document.get("Event") == TEST_EVENT


def records_of(document: Any) -> list[dict[str, Any]]:
    """The notification's records (an S3 notification or an S3-compatible webhook's body)."""
    if not isinstance(document, dict):
        return []
    records = document.get("Records")
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def _sequencer(event_time: str) -> str:
    try:
        when = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    except ValueError:
        when = datetime.now(UTC)
    return f"{int(when.timestamp() * 1e9):016X}"


def lambda_record(record: dict[str, Any], region: str) -> dict[str, Any]:
    """One notification record in Lambda's S3 shape, every field present."""
    out = copy.deepcopy(record)
    out.setdefault("eventVersion", "2.1")
    out["eventSource"] = "aws:s3"
    out.setdefault("awsRegion", region)
    event_time = out.setdefault(
        "eventTime", datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
    name = out.get("eventName", "")
    out["eventName"] = name[3:] if name.startswith("s3:") else name
    out.setdefault("userIdentity", {"principalId": DEFAULTS["principal"]})
    out.setdefault("requestParameters", {"sourceIPAddress": DEFAULTS["source_ip"]})
    out.setdefault("responseElements", {"x-amz-request-id": "", "x-amz-id-2": ""})
    s3 = out.setdefault("s3", {})
    s3.setdefault("s3SchemaVersion", "1.0")
    s3.setdefault("configurationId", "eventrouter")
    bucket = s3.setdefault("bucket", {})
    bucket.setdefault("ownerIdentity", {"principalId": DEFAULTS["principal"]})
    if "name" in bucket:
        bucket.setdefault("arn", f"arn:aws:s3:::{bucket['name']}")
    obj = s3.setdefault("object", {})
    obj.setdefault("sequencer", _sequencer(event_time))
    return out


def event_matches(name: str, patterns: tuple[str, ...]) -> bool:
    """``s3:ObjectCreated:*`` matches ``ObjectCreated:Put``; an exact name matches itself
    (a name with no last part, ``ObjectCreated:``, only the family's ``*``)."""
    full = name if name.startswith("s3:") else f"s3:{name}"
    for pattern in patterns:
        if pattern.endswith(":*") and full.startswith(pattern[:-1]):
            return True
        if full == pattern and not full.endswith(":"):
            return True
    return False


def key_of(record: dict[str, Any]) -> str:
    """The object's key, decoded from S3's URL encoding."""
    return unquote_plus(str(record.get("s3", {}).get("object", {}).get("key", "")))


def bucket_of(record: dict[str, Any]) -> str:
    return str(record.get("s3", {}).get("bucket", {}).get("name", ""))


# -- S3 events through EventBridge ---------------------------------------------------------------

#: EventBridge's detail-type of an S3 event -> S3's event family.
_FAMILIES = {
    "Object Created": "ObjectCreated",
    "Object Deleted": "ObjectRemoved",
    "Object Restore Initiated": "ObjectRestore",
    "Object Restore Completed": "ObjectRestore",
    "Object Tags Added": "ObjectTagging",
    "Object Tags Deleted": "ObjectTagging",
    "Object ACL Updated": "ObjectAcl",
}
#: EventBridge's ``detail.reason`` -> the event name's last part.
_REASONS = {
    "PutObject": "Put",
    "POST Object": "Post",
    "CopyObject": "Copy",
    "CompleteMultipartUpload": "CompleteMultipartUpload",
    "DeleteObject": "Delete",
}


def is_eventbridge_event(document: Any) -> bool:
    return isinstance(document, dict) and document.get("source") == "aws.s3"


def eventbridge_name(event: dict[str, Any]) -> str:
    """The S3 event name an EventBridge event stands for (``ObjectCreated:Put``); the family
    alone (``ObjectCreated:``) when its reason does not say which."""
    family = _FAMILIES.get(str(event.get("detail-type", "")), "")
    reason = str((event.get("detail") or {}).get("reason", ""))
    return f"{family}:{_REASONS.get(reason, '')}"


def eventbridge_key(event: dict[str, Any]) -> str:
    """The object's key (EventBridge carries it as it is, not URL-encoded)."""
    return str((event.get("detail") or {}).get("object", {}).get("key", ""))


def eventbridge_bucket(event: dict[str, Any]) -> str:
    return str((event.get("detail") or {}).get("bucket", {}).get("name", ""))
