"""Schedules: EventBridge's expressions (``cron``, ``expressions``) and the fires' ledger."""
