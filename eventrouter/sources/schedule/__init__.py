"""Schedules: ``Schedule`` (``source``), EventBridge's expressions (``cron``, ``expressions``),
the scheduler that fires them (``scheduler``) and the ledger of fires (``ledger``; ``dynamo``
for hosts sharing an SQS queue)."""

from eventrouter.sources.schedule.source import Schedule

__all__ = ["Schedule"]
