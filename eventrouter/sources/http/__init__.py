"""HTTP routes: the synchronous model."""

from eventrouter.sources.http.source import Http, RouteSpec

__all__ = ["Http", "RouteSpec"]
