"""A destination named by its ARN, as ``DestinationConfig`` of an event-invoke config names
it, and the ARN of a destination the code set (what ``GetFunctionEventInvokeConfig`` shows).

Lambda's destination types: a function, an SQS queue, an SNS topic, an event bus, an S3
bucket; and the router's own: an embedded queue or a directory (``arn:aws:eventrouter:...``).
An event bus the router declares is its embedded bus; another is EventBridge's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventrouter.arns import ACCOUNT, REGION, function_of
from eventrouter.destinations.aws import ToS3, to_eventbridge, to_s3, to_sns, to_sqs
from eventrouter.destinations.bus import to_bus
from eventrouter.destinations.directory import ToDirectory, to_directory
from eventrouter.destinations.function import to_function
from eventrouter.destinations.queue import to_queue
from eventrouter.errors import ConfigError

if TYPE_CHECKING:
    from eventrouter.contract.spec import Destination, Services


def destination_for(arn: str, runtime: Services) -> Destination:
    """The destination ``arn`` names; ``ConfigError`` when it names none the router can use."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[5]:
        raise ConfigError(f"{arn!r} is not an ARN")
    service, region, account, resource = parts[2], parts[3], parts[4], parts[5]
    if service == "lambda":
        name = function_of(arn)
        if name is None or name not in runtime.router.functions:
            raise ConfigError(f"{arn}: no such function in this router")
        return to_function(name)
    if service == "sqs":
        return to_sqs(f"https://sqs.{region}.amazonaws.com/{account}/{resource}", region=region)
    if service == "sns":
        return to_sns(arn, region=region)
    if service == "events" and resource.startswith("event-bus/"):
        bus = resource.removeprefix("event-bus/")
        if region == REGION and account == ACCOUNT and bus in runtime.buses.buses:
            return to_bus(bus)
        return to_eventbridge(arn, region=region)
    if service == "s3" and not region and not account:
        bucket, _, prefix = resource.partition("/")
        return to_s3(bucket, prefix)
    if service == "eventrouter" and resource.startswith("queue/"):
        return to_queue(resource.removeprefix("queue/"))
    if service == "eventrouter" and resource.startswith("directory/"):
        return to_directory("/" + resource.removeprefix("directory/"))
    raise ConfigError(
        f"{arn}: not a destination (a function, an SQS queue, an SNS topic, an event bus, "
        "an S3 bucket, an embedded queue or directory)"
    )


def arn_of(destination: Any) -> str:
    """The ARN a destination is known by (its resource, without an object's key)."""
    if isinstance(destination, ToS3):
        return f"arn:aws:s3:::{destination.bucket}"
    if isinstance(destination, ToDirectory):
        return str(destination.permission("")[1]).rstrip("/")
    return str(destination.permission("")[1])
