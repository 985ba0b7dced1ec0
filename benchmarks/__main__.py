"""``python -m benchmarks [--quick]``: run every scenario, print a summary, write results."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import (
    async_throughput,
    environments,
    http_throughput,
    invoke_overhead,
    kafka_throughput,
    sqs_throughput,
)
from benchmarks.common import environment

RESULTS = Path(__file__).parent / "results"


def _range(stats: dict[str, float], fmt: str) -> str:
    return f"{stats['median']:{fmt}} [{stats['min']:{fmt}}-{stats['max']:{fmt}}]"


def summary_rows(results: dict[str, Any]) -> list[str]:
    o = results["invoke_overhead"]
    a = results["async_throughput"]
    h = results["http_throughput"]
    rows = [
        "| figure | measured (median [min-max]) | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
        f"| sync invoke overhead, us/invoke | {_range(o['overhead_us'], '.2f')} "
        f"| bare await {o['bare_await_us']['median']:.3f} us | - "
        f"| <= {o['target_us']:.0f} us | {o['met']} |",
        f"| async invoke end to end, events/s | {_range(a['eventrouter_events_per_s'], ',.0f')} "
        f"| bare SQLite {a['bare_sqlite_events_per_s']['median']:,.0f}/s "
        f"| {a['ratio_to_bare_sqlite']:.2f}x | >= {a['target_events_per_s']:,.0f}/s | {a['met']} |",
    ]
    rows += _kafka_rows(results["kafka_throughput"])
    rows += _sqs_rows(results["sqs_throughput"])
    rows += _environment_rows(results["environments"])
    if "skipped" in h:
        rows.append(f"| HTTP no-op route, req/s | skipped: {h['skipped']} | | | | |")
        return rows
    ours = h["eventrouter"]
    rows += [
        f"| HTTP no-op route, req/s ({h['connections']} conn.) | {_range(ours['rps'], ',.0f')} "
        f"| bare ASGI {h['bare_asgi']['rps']['median']:,.0f} | {h['vs_bare']:.2f}x "
        f"| >= {h['targets']['vs_bare']}x | {h['vs_bare'] >= h['targets']['vs_bare']} |",
        f"| HTTP no-op route vs FastAPI | | FastAPI {h['fastapi']['rps']['median']:,.0f} "
        f"| {h['vs_fastapi']:.2f}x | >= {h['targets']['vs_fastapi']}x "
        f"| {h['vs_fastapi'] >= h['targets']['vs_fastapi']} |",
        f"| HTTP p50 / p99 latency, ms | eventrouter {ours['p50_ms']['median']:.2f} / "
        f"{ours['p99_ms']['median']:.2f} | bare {h['bare_asgi']['p50_ms']['median']:.2f} / "
        f"{h['bare_asgi']['p99_ms']['median']:.2f}; FastAPI "
        f"{h['fastapi']['p50_ms']['median']:.2f} / {h['fastapi']['p99_ms']['median']:.2f} "
        "| | reported | |",
    ]
    return rows


def _kafka_rows(k: dict[str, Any]) -> list[str]:
    t = k["targets"]
    top = f"aiokafka loop {k['ceiling']['median']:,.0f}/s"
    rows = [
        f"| Kafka batch handler, records/s ({k['records']:,} x {k['record_bytes']} B) "
        f"| {_range(k['batch'], ',.0f')} | {top} | {k['batch_vs_ceiling']:.2f}x "
        f"| >= {t['batch_vs_ceiling']}x | {k['batch_vs_ceiling'] >= t['batch_vs_ceiling']} |",
        f"| Kafka per-record handler, records/s | {_range(k['per_record'], ',.0f')} | {top} "
        f"| {k['per_record_vs_ceiling']:.2f}x | >= {t['per_record_vs_ceiling']}x "
        f"| {k['per_record_vs_ceiling'] >= t['per_record_vs_ceiling']} |",
    ]
    if "faststream" in k:
        ok = k["batch_vs_faststream"] >= t["batch_vs_faststream"]
        rows.append(
            f"| Kafka batch handler vs FastStream | "
            f"| FastStream {k['faststream']['median']:,.0f}/s "
            f"| {k['batch_vs_faststream']:.2f}x | >= {t['batch_vs_faststream']}x | {ok} |"
        )
    return rows


def _environment_rows(e: dict[str, Any]) -> list[str]:
    return [
        f"| process environment cold start, ms | {_range(e['cold_start_ms'], '.1f')} "
        f"| spawning python -c pass {e['bare_python_spawn_ms']['median']:.1f} ms "
        f"| {e['cold_start_vs_bare_spawn']:.1f}x | reported | |",
        f"| Runtime API (awslambdaric) cold start, ms "
        f"| {_range(e['cold_start_runtime_api_ms'], '.1f')} | | | reported | |",
        f"| process isolation warm overhead, us/invoke "
        f"| {_range(e['isolation_overhead_us'], '.1f')} "
        f"| inline {e['inline_us']['median']:.1f} us/invoke "
        f"| {e['isolated_vs_inline']:.1f}x | reported | |",
        f"| Runtime API (awslambdaric) warm invoke, us | {_range(e['runtime_api_warm_us'], '.0f')} "
        f"| isolated Python {e['isolated_us']['median']:.0f} us | | reported | |",
        f"| environments per GiB (idle, PSS / RSS) | {e['environments_per_gib_pss']:.0f} "
        f"/ {e['environments_per_gib_rss']:.0f} "
        f"| {e['environment_pss_mb']['median']:.1f} / {e['environment_rss_mb']['median']:.1f} "
        "MB each | | reported | |",
    ]


def _sqs_rows(q: dict[str, Any]) -> list[str]:
    t = q["targets"]
    loop = q["loop_messages_per_s"]["median"]
    cpu_loop = q["loop_cpu_us_per_message"]["median"]
    return [
        f"| SQS on moto, messages/s ({q['messages']} msgs, {q['pollers']} pollers) "
        f"| {_range(q['eventrouter_messages_per_s'], ',.0f')} | aiobotocore loop {loop:,.0f}/s "
        f"| {q['rate_vs_loop']:.2f}x | >= {t['rate_vs_loop']}x "
        f"| {q['rate_vs_loop'] >= t['rate_vs_loop']} |",
        f"| SQS CPU per message, us | {_range(q['eventrouter_cpu_us_per_message'], ',.0f')} "
        f"| aiobotocore loop {cpu_loop:,.0f} us | {q['cpu_per_message_vs_loop']:.2f}x "
        f"| <= {t['cpu_per_message_vs_loop']}x "
        f"| {q['cpu_per_message_vs_loop'] <= t['cpu_per_message_vs_loop']} |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "--quick", action="store_true", help="seconds: check that all scenarios run"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"environment": environment(), "quick": args.quick}
    scenarios = (
        ("invoke_overhead", invoke_overhead),
        ("async_throughput", async_throughput),
        ("http_throughput", http_throughput),
        ("kafka_throughput", kafka_throughput),
        ("sqs_throughput", sqs_throughput),
        ("environments", environments),
    )
    for name, module in scenarios:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        results[name] = module.run(quick=args.quick)
        print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    summary = "\n".join(summary_rows(results))
    if args.quick:
        print("quick mode: every scenario ran; these figures are too small to mean anything")
    print(summary)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / "summary.md").write_text(summary + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
