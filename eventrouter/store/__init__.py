"""The durable queue of asynchronous invocations: the protocol and its two stores."""

from eventrouter.store.base import Store, StoredEvent
from eventrouter.store.sqlite import EventStore

__all__ = ["EventStore", "Store", "StoredEvent"]
