"""The embedded durable queue."""

from eventrouter.store.sqlite import EventStore, StoredEvent

__all__ = ["EventStore", "StoredEvent"]
