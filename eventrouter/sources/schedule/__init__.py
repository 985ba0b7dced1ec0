"""Schedules: ``Schedule`` (``source``), EventBridge's expressions (``cron``, ``expressions``),
the scheduler that fires them (``scheduler``, started by ``starter``) and the ledger of fires
(``ledger``; ``dynamo`` for hosts sharing an SQS queue)."""

from eventrouter.sources.schedule.source import Schedule
from eventrouter.sources.schedule.starter import SCHEDULES

#: The class declares its starter here, not in its body: the scheduler names the class.
Schedule.starter = SCHEDULES

__all__ = ["Schedule"]
