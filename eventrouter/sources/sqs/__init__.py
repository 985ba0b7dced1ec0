"""Amazon SQS: a polled queue (settings, the adapter, the message shape)."""

from eventrouter.sources.sqs.source import Sqs, SqsAdapter, SqsMessage

__all__ = ["Sqs", "SqsAdapter", "SqsMessage"]
