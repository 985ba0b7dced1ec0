"""Amazon Kinesis Data Streams: a sharded stream (its transport and record shape)."""

from eventrouter.sources.kinesis.source import Kinesis, KinesisRecord

__all__ = ["Kinesis", "KinesisRecord"]
