"""The shop's event bus and schedule: who listens to placed orders, and a report each hour."""

from typing import Any

from eventrouter import Context, EventRule, Schedule, on_event

#: Orders seen on the bus since the last report (this process only: a demo, not a ledger).
_placed: list[float] = []


@on_event(
    EventRule(
        bus="orders",
        pattern={"source": ["shop"], "detail-type": ["order.placed"]},
        input_path="$.detail",
    )
)
async def count_order(receipt: dict[str, Any], ctx: Context) -> None:
    """Every order placed_order puts on the ``orders`` bus (its ``detail`` only)."""
    _placed.append(receipt["total"])


@on_event(Schedule("cron(0 * * * ? *)", timezone="Europe/Paris", catch_up="none"))
async def hourly_report(event: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """On the hour: what the last hour sold (the event is EventBridge's Scheduled Event)."""
    report = {"hour": event["time"], "orders": len(_placed), "sales": round(sum(_placed), 2)}
    _placed.clear()
    ctx.log.info("hourly report", **report)
    return report
