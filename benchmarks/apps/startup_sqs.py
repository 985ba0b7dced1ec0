"""A router with one SQS source (the queue and endpoint from the environment): the AWS-source
row of the start-up benchmark."""

import os

from eventrouter import Http, Router, Sqs

router = Router("startup-sqs")


@router.on_event(
    Sqs(
        os.environ["STARTUP_QUEUE"], endpoint_url=os.environ["STARTUP_ENDPOINT"], region="us-east-1"
    )
)
async def work(event: dict) -> None:  # type: ignore[type-arg]
    pass


@router.on_event(Http("GET /noop"))
async def noop(event: dict) -> dict:  # type: ignore[type-arg]
    return {}
