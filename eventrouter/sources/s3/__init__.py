"""Amazon S3 event notifications, through an SQS queue or a webhook (``source``: settings and
endpoint; ``rules``: the event shapes and key filters)."""

from eventrouter.sources.s3.source import S3

__all__ = ["S3"]
