import eventrouter

EXPECTED = {
    "AccessDenied",
    "Permission",
    "ConfigError",
    "DynamoDBRecord",
    "DynamoDBStream",
    "Kinesis",
    "KinesisRecord",
    "S3",
    "Sns",
    "Context",
    "DestinationError",
    "Engine",
    "EventBus",
    "EventRule",
    "EventRouterError",
    "FunctionError",
    "FunctionNotFound",
    "FunctionTimeout",
    "Http",
    "HttpEvent",
    "HttpRequest",
    "Response",
    "ServerSentEvent",
    "StreamingResponse",
    "sse",
    "InvalidRequestContent",
    "InvokeError",
    "Kafka",
    "KafkaRecord",
    "PayloadTooLarge",
    "Queue",
    "RecursiveInvocation",
    "Router",
    "Schedule",
    "SourceError",
    "Sqs",
    "SqsMessage",
    "StateDirInUse",
    "Throttled",
    "default_router",
    "on_event",
    "to_bus",
    "to_directory",
    "to_eventbridge",
    "to_function",
    "to_kafka",
    "to_queue",
    "to_s3",
    "to_sns",
    "to_sqs",
}


def test_all_is_sorted_and_complete() -> None:
    assert eventrouter.__all__ == sorted(eventrouter.__all__)
    assert set(eventrouter.__all__) == EXPECTED


def test_every_public_name_is_importable_and_documented() -> None:
    for name in eventrouter.__all__:
        member = getattr(eventrouter, name)
        assert member.__doc__, f"{name} has no docstring"
