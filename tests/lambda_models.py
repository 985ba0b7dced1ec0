"""Events checked against AWS Lambda Powertools' parser models: the shapes real Lambda code
parses events with, so an event that fails here would fail in a user's handler."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    DynamoDBStreamModel,
    EventBridgeModel,
    KafkaSelfManagedEventModel,
    KinesisDataStreamModel,
    S3EventNotificationEventBridgeModel,
    S3Model,
    SnsModel,
    SqsModel,
)

MODELS = {
    "http": APIGatewayProxyEventV2Model,
    "sqs": SqsModel,
    "kafka": KafkaSelfManagedEventModel,
    "eventbridge": EventBridgeModel,
    "kinesis": KinesisDataStreamModel,
    "dynamodb": DynamoDBStreamModel,
    "sns": SnsModel,
    "s3": S3Model,
    "s3-eventbridge": S3EventNotificationEventBridgeModel,
}


def check_event(kind: str, event: dict[str, Any]) -> Any:
    """Parse ``event`` with Powertools' model of ``kind``; it must also survive
    ``json.dumps``, as every event Lambda sends is JSON."""
    text = json.dumps(event)
    return parse(event=json.loads(text), model=MODELS[kind])
