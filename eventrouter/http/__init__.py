"""The HTTP surface: application routes, Lambda's Invoke API, health and OpenAPI."""

from eventrouter.http.request import HttpRequest
from eventrouter.response import Response

__all__ = ["HttpRequest", "Response"]
