"""``python -m benchmarks [--quick]``: run every scenario, print a summary, write results."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks import async_throughput, invoke_overhead
from benchmarks.common import environment

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "--quick", action="store_true", help="seconds: check that all scenarios run"
    )
    args = parser.parse_args()
    results: dict[str, object] = {"environment": environment(), "quick": args.quick}
    for name, module in (
        ("invoke_overhead", invoke_overhead),
        ("async_throughput", async_throughput),
    ):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        results[name] = module.run(quick=args.quick)
        print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    o = results["invoke_overhead"]
    a = results["async_throughput"]
    assert isinstance(o, dict) and isinstance(a, dict)
    rate = a["eventrouter_events_per_s"]
    lines = [
        "| figure | measured (median [min-max]) | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
        f"| sync invoke overhead, µs/invoke | {o['overhead_us']['median']:.2f} "
        f"[{o['overhead_us']['min']:.2f}-{o['overhead_us']['max']:.2f}] | bare await "
        f"{o['bare_await_us']['median']:.3f} µs | - | ≤ {o['target_us']:.0f} µs | {o['met']} |",
        f"| async invoke end to end, events/s | {rate['median']:,.0f} "
        f"[{rate['min']:,.0f}-{rate['max']:,.0f}] "
        f"| bare SQLite {a['bare_sqlite_events_per_s']['median']:,.0f}/s "
        f"| {a['ratio_to_bare_sqlite']:.2f}x | ≥ {a['target_events_per_s']:,.0f}/s | {a['met']} |",
    ]
    summary = "\n".join(lines)
    print(summary)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / "summary.md").write_text(summary + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
