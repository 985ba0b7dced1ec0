"""A Lambda handler for awslambdaric that sleeps as long as it is told."""

import time


def handler(event, context):
    time.sleep(event["sleep"])
    return {"slept": event["sleep"]}
