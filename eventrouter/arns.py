"""Every ARN the router names, built in one place.

The router is one account (``000000000000``) in one region (``AWS_REGION``, else
``AWS_DEFAULT_REGION``, else ``us-east-1``). Embedded resources (queues, directories) get
ARNs in an ``eventrouter`` partition of their own so policies can name them.
"""

from __future__ import annotations

import os

REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
ACCOUNT = "000000000000"
LATEST = "$LATEST"


def function_arn(name: str) -> str:
    """The ARN-like id of a function: ``arn:aws:lambda:<region>:000000000000:function:<name>``."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def function_of(arn: str) -> str | None:
    """The function named by a :func:`function_arn` of this router, else ``None``."""
    prefix = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
    return arn[len(prefix) :].split(":", 1)[0] if arn.startswith(prefix) else None


def event_source_mapping_arn(uuid: str) -> str:
    """An event source mapping's ARN (the resource of ``lambda:UpdateEventSourceMapping``...)."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{uuid}"


def role_arn(function: str) -> str:
    """The execution role of a function (the principal its actions are checked as)."""
    return f"arn:aws:iam::{ACCOUNT}:role/{function}"


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def account_root(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def queue_arn(name: str) -> str:
    """The ARN of an embedded queue (a policy's resource / ``aws:SourceArn``)."""
    return f"arn:aws:eventrouter:{REGION}:{ACCOUNT}:queue/{name}"


def directory_arn(folder: str) -> str:
    return f"arn:aws:eventrouter:{REGION}:{ACCOUNT}:directory/{folder}"


def kafka_topic_arn(topic: str) -> str:
    return f"arn:aws:kafka:{REGION}:{ACCOUNT}:topic/{topic}"


def sqs_arn(queue: str, region: str | None = None) -> str:
    """The ARN of an SQS queue given by name or URL (``https://sqs.REGION.../ACCOUNT/NAME``);
    a name alone is taken to be in the router's account."""
    if queue.startswith(("https://", "http://")):
        host, _, path = queue.split("://", 1)[1].partition("/")
        parts = path.strip("/").split("/")
        account, name = (parts[-2], parts[-1]) if len(parts) >= 2 else (ACCOUNT, parts[-1])
        labels = host.split(".")
        if region is None and len(labels) > 2 and labels[0] == "sqs":
            region = labels[1]
        return f"arn:aws:sqs:{region or REGION}:{account}:{name}"
    return f"arn:aws:sqs:{region or REGION}:{ACCOUNT}:{queue}"


def region_of(arn: str, default: str = "") -> str:
    """The region field of ``arn`` (``default`` when it has none)."""
    return arn.split(":")[3] if arn.count(":") >= 5 else default


def event_bus_arn(bus: str, region: str | None = None) -> str:
    return f"arn:aws:events:{region or REGION}:{ACCOUNT}:event-bus/{bus}"


def rule_arn(bus: str, rule: str) -> str:
    """An event-bus rule's ARN (a rule on the default bus has no bus in its ARN)."""
    middle = rule if bus == "default" else f"{bus}/{rule}"
    return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{middle}"


def schedule_arn(name: str, group: str = "default") -> str:
    return f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{name}"


def s3_object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


#: The bus events go to when none is named.
DEFAULT_BUS = "default"


def bus_name(name_or_arn: str) -> str:
    """A bus given by name or ARN (``arn:aws:events:...:event-bus/NAME``)."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn.rsplit("event-bus/", 1)[-1]
    return name_or_arn
