"""``python -m eventrouter schedules``: each schedule, its next fire times, its last fire."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from eventrouter.sources.schedule.source import Schedule

if TYPE_CHECKING:
    from eventrouter.contract.spec import RouterInfo
    from eventrouter.sources.schedule.ledger import ScheduleState


def next_fires(schedule: Schedule, state: ScheduleState | None, now: float, n: int) -> list[float]:
    """The next ``n`` fire times after ``now`` (flexible windows applied)."""
    anchor = schedule.anchor(state.created if state is not None else now)
    after = max(now, state.last_due or now) if state is not None else now
    out: list[float] = []
    due = schedule.next_due(after, anchor)
    while due is not None and len(out) < n:
        out.append(schedule.fire_at(due))
        due = schedule.next_due(due, anchor)
    return out


def schedules_report(router: RouterInfo, states: list[ScheduleState], now: float) -> str:
    """Plain text: one block per schedule."""
    by_arn = {s.arn: s for s in states}
    blocks = []
    for spec in sorted(router.functions.values(), key=lambda s: s.name):
        schedule = spec.source
        if not isinstance(schedule, Schedule):
            continue
        state = by_arn.get(schedule.arn)
        zone = schedule.zone

        def local(instant: float) -> str:
            return datetime.fromtimestamp(instant, zone).strftime("%Y-%m-%d %H:%M:%S %Z")  # noqa: B023

        fires = [local(t) for t in next_fires(schedule, state, now, 5)]
        if state is None or state.last_due is None:
            last = "never"
        else:
            assert state.last_fired_at is not None
            last = (
                f"{local(state.last_due)} (at {local(state.last_fired_at)}): {state.last_outcome}"
            )
        lines = [
            f"{spec.name}  {schedule.expression}  timezone={schedule.timezone}"
            + (f"  flexible_window={schedule.flexible_window}s" if schedule.flexible_window else "")
            + f"  catch_up={schedule.catch_up}",
            f"  arn   {schedule.arn}",
            f"  last  {last}",
            "  next  " + ("\n        ".join(fires) if fires else "none (the schedule has ended)"),
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else f"router {router.name!r} has no schedules"
