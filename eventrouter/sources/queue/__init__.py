"""Embedded durable queues (``Queue``): asynchronous invocations consumed in batches."""

from eventrouter.sources.queue.source import Queue

__all__ = ["Queue"]
