"""The shape of a context object: its public attributes and their types, for comparing
eventrouter's context with ``awslambdaric``'s ``LambdaContext``."""

from __future__ import annotations

from typing import Any

from eventrouter import Router

router = Router("context-shape")

#: What the comparison reads of nested objects.
NESTED = {
    "client_context": ("client", "custom", "env"),
    "identity": ("cognito_identity_id", "cognito_identity_pool_id"),
    "client": (
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ),
}


def kind(value: Any) -> str:
    if value is None:
        return "None"
    if callable(value):
        return "callable"
    return type(value).__name__


def shape(obj: Any, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """``{attribute: type name}``; nested objects as their own shapes."""
    if names is None:
        names = tuple(n for n in dir(obj) if not n.startswith("_"))
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = (
            shape(value, NESTED[name]) if name in NESTED and value is not None else kind(value)
        )
    return out


@router.on_event(None)
def inline(event: Any, ctx: Any) -> dict[str, Any]:
    return shape(ctx)


@router.on_event(None, isolation="process")
def isolated(event: Any, ctx: Any) -> dict[str, Any]:
    return shape(ctx)
