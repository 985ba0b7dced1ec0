"""Amazon SNS: notifications through an SQS queue or an HTTP subscription (``source``: the
settings and the endpoint; ``rules``: the message shapes, signatures and filter policies)."""

from eventrouter.sources.sns.source import Sns

__all__ = ["Sns"]
