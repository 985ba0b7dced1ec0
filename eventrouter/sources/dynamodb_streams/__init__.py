"""DynamoDB Streams: a sharded stream (its transport and record shape)."""

from eventrouter.sources.dynamodb_streams.source import DynamoDBRecord, DynamoDBStream

__all__ = ["DynamoDBRecord", "DynamoDBStream"]
