"""``python -m benchmarks [--quick] [--only NAME ...]``: run the scenarios, write the results.

A full run writes ``benchmarks/results/latest.json`` (every figure, with the machine and the
package versions), ``summary.md`` (figure, baseline, ratio, target) and the PNG plots. Quick
mode runs every scenario with tiny sizes, to check that they still execute (its figures mean
nothing): it writes files only where ``--out`` says.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks import (
    async_throughput,
    environments,
    events,
    http_throughput,
    invoke_overhead,
    kafka_throughput,
    kinesis_throughput,
    notifications,
    scaling,
    sqs_throughput,
    startup,
    streaming,
    timeouts,
    workers,
)
from benchmarks.common import environment, progress

RESULTS = Path(__file__).parent / "results"
SCENARIOS: dict[str, ModuleType] = {
    "invoke_overhead": invoke_overhead,
    "environments": environments,
    "async_throughput": async_throughput,
    "http_throughput": http_throughput,
    "streaming": streaming,
    "kafka_throughput": kafka_throughput,
    "sqs_throughput": sqs_throughput,
    "kinesis_throughput": kinesis_throughput,
    "notifications": notifications,
    "scaling": scaling,
    "timeouts": timeouts,
    "events": events,
    "workers": workers,
    "startup": startup,
}
HEADER = [
    "| figure | measured: median [min-max] | baseline (same run) | ratio | target | met |",
    "|---|---|---|---|---|---|",
]


def _range(stats: dict[str, float], fmt: str) -> str:
    return f"{stats['median']:{fmt}} [{stats['min']:{fmt}}-{stats['max']:{fmt}}]"


def _row(
    figure: str,
    measured: str,
    baseline: str = "",
    ratio: str = "",
    target: str = "",
    met: bool | None = None,
) -> str:
    verdict = "" if met is None else ("yes" if met else "**no**")
    return f"| {figure} | {measured} | {baseline} | {ratio} | {target or 'reported'} | {verdict} |"


def invoke_rows(o: dict[str, Any], e: dict[str, Any]) -> list[str]:
    return [
        _row(
            "sync invoke overhead, µs/invoke (in process)",
            _range(o["overhead_us"], ".2f"),
            f"bare await {o['bare_await_us']['median']:.3f} µs",
            target=f"<= {o['target_us']:.0f} µs",
            met=o["met"],
        ),
        _row(
            "metrics on the sync invoke path, µs/invoke (on - off)",
            _range(o["metrics_cost_us"], ".2f"),
            f"metrics off {o['overhead_metrics_off_us']['median']:.2f} µs",
            target=f"<= {o['metrics_target_us']:.0f} µs",
            met=o["metrics_met"],
        ),
        *(
            [
                _row(
                    "sync invoke traced (OpenTelemetry SDK span, no exporter), µs/invoke",
                    _range(o["traced_overhead_us"], ".2f"),
                    f"untraced {o['overhead_us']['median']:.2f} µs",
                )
            ]
            if o.get("traced_overhead_us")
            else []
        ),
        _row(
            "sync invoke, process isolation, µs/invoke (warm)",
            _range(e["isolated_us"], ".1f"),
            f"inline {e['inline_us']['median']:.1f} µs",
            f"{e['isolated_vs_inline']:.1f}x",
        ),
        _row(
            "process environment cold start, ms",
            _range(e["cold_start_ms"], ".1f"),
            f"spawning python -c pass {e['bare_python_spawn_ms']['median']:.1f} ms",
            f"{e['cold_start_vs_bare_spawn']:.1f}x",
        ),
        _row(
            "SnapStart cold start (a restore), ms",
            _range(e["cold_start_snapstart_ms"], ".1f"),
            f"spawning python -c pass {e['bare_python_spawn_ms']['median']:.1f} ms",
            f"{e['snapstart_vs_bare_spawn']:.1f}x",
            "<= 2x",
            e["snapstart_vs_bare_spawn"] <= 2,
        ),
        _row(
            "SnapStart cold start vs a cold start",
            f"{e['snapstart_speedup']:.1f}x faster",
            f"cold start {e['cold_start_ms']['median']:.1f} ms",
            f"{e['snapstart_speedup']:.1f}x",
            ">= 10x",
            e["snapstart_speedup"] >= 10,
        ),
        _row(
            "first 100 invocations after start, p99 ms, 4 provisioned",
            _range(e["first_100_p99_provisioned_ms"], ".1f"),
            f"on demand {e['first_100_p99_on_demand_ms']['median']:.1f} ms",
            f"{e['provisioned_speedup']:.1f}x faster",
        ),
        _row(
            "Runtime API (awslambdaric) cold start, ms",
            _range(e["cold_start_runtime_api_ms"], ".1f"),
        ),
        _row(
            "Runtime API (awslambdaric) warm invoke, µs",
            _range(e["runtime_api_warm_us"], ".0f"),
            f"isolated Python {e['isolated_us']['median']:.0f} µs",
        ),
        _row(
            "environments per GiB (idle, PSS / RSS)",
            f"{e['environments_per_gib_pss']:.0f} / {e['environments_per_gib_rss']:.0f}",
            f"{e['environment_pss_mb']['median']:.1f} / "
            f"{e['environment_rss_mb']['median']:.1f} MB each",
        ),
    ]


def async_rows(a: dict[str, Any]) -> list[str]:
    return [
        _row(
            f"async invoke end to end, events/s ({a['events']:,} events)",
            _range(a["eventrouter_events_per_s"], ",.0f"),
            f"the same SQLite work by hand {a['bare_sqlite_events_per_s']['median']:,.0f}/s",
            f"{a['ratio_to_bare_sqlite']:.2f}x",
            f">= {a['target_events_per_s']:,.0f}/s",
            a["met"],
        ),
        _row(
            "cost of durability: async events/s, queue on disk vs in memory",
            _range(a["in_memory_events_per_s"], ",.0f") + " in memory",
            f"on disk {a['eventrouter_events_per_s']['median']:,.0f}/s",
            f"{a['durable_vs_in_memory']:.2f}x",
        ),
    ]


def http_rows(h: dict[str, Any]) -> list[str]:
    if "skipped" in h:
        return [_row("HTTP", f"skipped: {h['skipped']}")]
    t = h["targets"]
    rows = []
    for c in h["connections"]:
        row = h["by_connections"][str(c)]
        ours, api = row["eventrouter"], row["invoke_api"]
        median = {k: row[k]["rps"]["median"] for k in row if isinstance(row[k], dict)}
        rows += [
            _row(
                f"HTTP no-op route, req/s, {c} conn.",
                _range(ours["rps"], ",.0f"),
                f"bare ASGI on uvicorn {median['bare_asgi']:,.0f}",
                f"{row['vs_bare_asgi']:.2f}x",
                f">= {t['vs_bare']}x",
                row["vs_bare_asgi"] >= t["vs_bare"],
            ),
            _row(
                f"HTTP no-op route vs the no-framework limit, {c} conn.",
                "",
                f"asyncio Protocol + httptools {median['limit']:,.0f}",
                f"{row['vs_limit']:.2f}x",
                f">= {t['vs_limit']}x",
                row["vs_limit"] >= t["vs_limit"],
            ),
            _row(
                f"HTTP no-op route vs Sanic, {c} conn.",
                "",
                f"Sanic {median['sanic']:,.0f}",
                f"{row['vs_sanic']:.2f}x",
                f">= {t['vs_sanic']}x",
                row["vs_sanic"] >= t["vs_sanic"],
            ),
            _row(
                f"HTTP no-op route vs bare ASGI on granian (Rust), {c} conn.",
                "",
                f"granian {median['granian']:,.0f}",
                f"{row['vs_granian']:.2f}x",
                f">= {t['vs_granian']}x",
                row["vs_granian"] >= t["vs_granian"],
            ),
            _row(
                f"HTTP no-op route vs other peers, {c} conn.",
                "",
                f"FastAPI {median['fastapi']:,.0f}; "
                f"the route on uvicorn {median['on_uvicorn']:,.0f}",
                f"{row['vs_fastapi']:.2f}x; {row['vs_on_uvicorn']:.2f}x",
            ),
            _row(
                f"Invoke API (RequestResponse), req/s, {c} conn.",
                _range(api["rps"], ",.0f"),
                f"route {ours['rps']['median']:,.0f}",
                f"{row['invoke_api_vs_route']:.2f}x",
                f">= {t['invoke_vs_route']}x",
                row["invoke_met"],
            ),
            _row(
                f"HTTP p50 / p99 latency, ms, {c} conn.",
                f"route {ours['p50_ms']['median']:.2f} / {ours['p99_ms']['median']:.2f}; "
                f"Invoke API {api['p50_ms']['median']:.2f} / {api['p99_ms']['median']:.2f}",
                "; ".join(
                    f"{label} {row[k]['p50_ms']['median']:.2f} / {row[k]['p99_ms']['median']:.2f}"
                    for k, label in (("bare_asgi", "bare"), ("sanic", "Sanic"), ("limit", "limit"))
                ),
                f"p99 {row['p99_vs_bare']:.2f}x bare",
                "p99 <= bare's",
                row["p99_vs_bare"] <= 1.0,
            ),
        ]
    for size, row in h["by_payload"].items():
        route, api, bare = row["eventrouter"], row["invoke_api"], row["bare_asgi"]
        big = size == "1000000"
        rows.append(
            _row(
                f"HTTP route, {int(size):,} B JSON body, req/s ({h['payload_connections']} conn.)",
                _range(route["rps"], ",.0f") + f" (p99 {route['p99_ms']['median']:.1f} ms); "
                f"Invoke API {api['rps']['median']:,.0f}",
                f"bare ASGI reading + decoding it {bare['rps']['median']:,.0f}",
                f"{row['route_vs_bare']:.2f}x; Invoke API {row['invoke_api_vs_bare']:.2f}x",
                f">= {t['body_vs_bare']}x" if big else "",
                row["route_vs_bare"] >= t["body_vs_bare"] if big else None,
            )
        )
    return rows


def streaming_rows(s: dict[str, Any]) -> list[str]:
    if "skipped" in s:
        return [_row("streamed response", f"skipped: {s['skipped']}")]
    mb = s["megabytes"]
    ours, bare = s["eventrouter"], s["bare_asgi"]
    return [
        _row(
            f"streamed response, {mb} MB: time to first byte, ms",
            _range(ours["ttfb_ms"], ".2f"),
            f"bare ASGI on uvicorn {bare['ttfb_ms']['median']:.2f}",
            f"{ours['ttfb_ms']['median'] / bare['ttfb_ms']['median']:.2f}x",
        ),
        _row(
            f"streamed response, {mb} MB, MB/s",
            _range(ours["mb_per_s"], ",.0f"),
            f"bare ASGI on uvicorn {bare['mb_per_s']['median']:,.0f}",
            f"{s['throughput_vs_bare']:.2f}x",
        ),
    ]


def worker_rows(w: dict[str, Any]) -> list[str]:
    one, two = w["events_per_s"]["1"], w["events_per_s"]["2"]
    rows = [
        _row(
            f"async events end to end, 2 workers, events/s ({w['events']:,} queued)",
            _range(two, ",.0f"),
            f"1 worker {one['median']:,.0f}/s",
            f"{w['speedup']:.2f}x",
            f">= {w['target_speedup']}x",
            w["met"],
        )
    ]
    if "http_rps" in w:
        r1, r2 = w["http_rps"]["1"], w["http_rps"]["2"]
        c1, c2 = w["http_cpu_us"]["1"], w["http_cpu_us"]["2"]
        rows.append(
            _row(
                "HTTP no-op route, 2 workers, req/s (wrk on the same 2 cores); CPU µs/request",
                _range(r2, ",.0f") + f"; {c2['median']:.1f} µs",
                f"1 worker {r1['median']:,.0f}; {c1['median']:.1f} µs",
                f"{r2['median'] / r1['median']:.2f}x",
            )
        )
    return rows


def kafka_rows(k: dict[str, Any]) -> list[str]:
    t = k["targets"]
    top = f"aiokafka loop {k['ceiling']['median']:,.0f}/s"
    rows = [
        _row(
            f"Kafka batch handler, records/s ({k['records']:,} x {k['record_bytes']} B, "
            f"{k['partitions']} partitions)",
            _range(k["batch"], ",.0f"),
            top,
            f"{k['batch_vs_ceiling']:.2f}x",
            f">= {t['batch_vs_ceiling']}x",
            k["batch_vs_ceiling"] >= t["batch_vs_ceiling"],
        ),
        _row(
            "Kafka per-record handler, records/s",
            _range(k["per_record"], ",.0f"),
            top,
            f"{k['per_record_vs_ceiling']:.2f}x",
            f">= {t['per_record_vs_ceiling']}x",
            k["per_record_vs_ceiling"] >= t["per_record_vs_ceiling"],
        ),
    ]
    if "faststream" in k:
        rows.append(
            _row(
                "Kafka batch handler vs FastStream",
                "",
                f"FastStream {_range(k['faststream'], ',.0f')}/s",
                f"{k['batch_vs_faststream']:.2f}x",
                f">= {t['batch_vs_faststream']}x",
                k["batch_vs_faststream"] >= t["batch_vs_faststream"],
            )
        )
    if "faust" in k:
        rows.append(
            _row(
                "Kafka batch handler vs Faust (faust-streaming)",
                "",
                f"Faust {_range(k['faust'], ',.0f')}/s",
                f"{k['batch_vs_faust']:.2f}x",
            )
        )
    for n, row in k["by_partitions"].items():
        rows.append(
            _row(
                f"Kafka batch handler, {n} partition{'s' if n != '1' else ''}, records/s",
                _range(row["batch"], ",.0f"),
                f"aiokafka loop {row['ceiling']['median']:,.0f}/s",
                f"{row['batch_vs_ceiling']:.2f}x",
            )
        )
    return rows


def sqs_rows(q: dict[str, Any]) -> list[str]:
    t = q["targets"]
    peak = max(n for _, n in q["poller_history"])
    return [
        _row(
            f"SQS on moto, messages/s ({q['messages']} msgs, {q['pollers']} pollers)",
            _range(q["eventrouter_messages_per_s"], ",.0f"),
            f"aiobotocore loop {q['loop_messages_per_s']['median']:,.0f}/s",
            f"{q['rate_vs_loop']:.2f}x",
            f">= {t['rate_vs_loop']}x",
            q["rate_vs_loop"] >= t["rate_vs_loop"],
        ),
        _row(
            "SQS CPU per message, µs",
            _range(q["eventrouter_cpu_us_per_message"], ",.0f"),
            f"aiobotocore loop {q['loop_cpu_us_per_message']['median']:,.0f} µs",
            f"{q['cpu_per_message_vs_loop']:.2f}x",
            f"<= {t['cpu_per_message_vs_loop']}x",
            q["cpu_per_message_vs_loop"] <= t["cpu_per_message_vs_loop"],
        ),
        _row("SQS pollers while a backlog drains", f"1 -> {peak} -> back down (see plot)"),
    ]


def kinesis_rows(k: dict[str, Any]) -> list[str]:
    t = k["targets"]
    return [
        _row(
            f"Kinesis on moto, records/s ({k['records']} records, {k['shards']} shards)",
            _range(k["eventrouter_records_per_s"], ",.0f"),
            f"aiobotocore loop {k['loop_records_per_s']['median']:,.0f}/s",
            f"{k['rate_vs_loop']:.2f}x",
        ),
        _row(
            "Kinesis CPU per record, µs",
            _range(k["eventrouter_cpu_us_per_record"], ",.1f"),
            f"aiobotocore loop {k['loop_cpu_us_per_record']['median']:,.1f} µs",
            f"{k['cpu_per_record_vs_loop']:.2f}x",
            f"<= {t['cpu_per_record_vs_loop']}x",
            k["cpu_per_record_vs_loop"] <= t["cpu_per_record_vs_loop"],
        ),
    ]


def notification_rows(n: dict[str, Any]) -> list[str]:
    q, h, goal = n["through_sqs"], n["over_http"], n["targets"]["unwrap_vs_sqs_cpu"]
    unwrap = q["unwrap_us_per_message"] / q["sqs_cpu_us_per_message"]["median"]
    rows = [
        _row(
            "SNS via SQS: unwrapping an envelope into Lambda's event, µs per message",
            f"{q['unwrap_us_per_message']:.1f}",
            f"Sqs source CPU {q['sqs_cpu_us_per_message']['median']:,.0f} µs/message",
            f"+{unwrap:.1%}",
            f"<= +{goal:.0%}",
            unwrap <= goal,
        ),
        _row(
            f"SNS via SQS on moto, CPU per message end to end, µs ({q['messages']} msgs)",
            _range(q["sns_cpu_us_per_message"], ",.0f"),
            f"Sqs source alone {q['sqs_cpu_us_per_message']['median']:,.0f} µs",
            f"{q['cpu_per_message_vs_sqs']:.2f}x",
        ),
    ]
    if "skipped" in h:
        rows.append(_row("SNS HTTP endpoint", f"skipped: {h['skipped']}"))
    else:
        rows.append(
            _row(
                "SNS HTTP endpoint (signatures checked), req/s, 16 conn.",
                _range(h["sns_rps"], ",.0f"),
                f"Invoke API Event {h['invoke_event_rps']['median']:,.0f}/s",
                f"{h['sns_vs_invoke']:.2f}x",
            )
        )
    return rows


def scaling_rows(s: dict[str, Any]) -> list[str]:
    rows = []
    one = s["functions"]["1"]
    for count, row in s["functions"].items():
        rows.append(
            _row(
                f"{int(count):,} registered function{'s' if count != '1' else ''}: "
                "sync µs/invoke; async events/s",
                f"{_range(row['sync_us'], '.2f')}; {_range(row['async_events_per_s'], ',.0f')}",
                f"1 function: {one['sync_us']['median']:.2f} µs; "
                f"{one['async_events_per_s']['median']:,.0f}/s",
                f"{row['sync_us']['median'] / one['sync_us']['median']:.2f}x; "
                f"{row['async_events_per_s']['median'] / one['async_events_per_s']['median']:.2f}x",
            )
        )
    small = s["payloads"][min(s["payloads"], key=int)]
    for size, row in s["payloads"].items():
        rows.append(
            _row(
                f"async invoke, {int(size):,} B payload: events/s (MB/s)",
                f"{_range(row['events_per_s'], ',.0f')} ({row['mb_per_s']:,.1f} MB/s)",
                f"{min(s['payloads'], key=int)} B: {small['events_per_s']['median']:,.0f}/s",
                f"{row['events_per_s']['median'] / small['events_per_s']['median']:.3f}x",
            )
        )
    f = s["in_flight"]
    rows.append(
        _row(
            f"memory per in-flight invocation, KB ({f['invocations']:,} sleeping at once)",
            _range(f["kb_per_invocation"], ".2f"),
            f"bare asyncio task {f['bare_task_kb']['median']:.2f} KB",
            f"{f['kb_per_invocation']['median'] / f['bare_task_kb']['median']:.1f}x"
            if f["bare_task_kb"]["median"] > 0
            else "",
        )
    )
    load = s["load"]
    for level in ("50%", "90%"):
        row = load[level]
        rows.append(
            _row(
                f"async latency at {level} of peak ({_range(load['peak_events_per_s'], ',.0f')}/s)"
                ": p50; p99; max, ms",
                f"{_range(row['p50_ms'], '.2f')}; {_range(row['p99_ms'], '.2f')}; "
                f"{_range(row['max_ms'], '.1f')}",
                f"reached {row['reached_events_per_s']['median']:,.0f} of "
                f"{row['target_events_per_s']['median']:,.0f}/s",
            )
        )
    return rows


def timeout_rows(t: dict[str, Any]) -> list[str]:
    n = t["invocations"] * len(t["rounds"])
    return [
        _row(
            f"{t['invocations']:,} overrunning invocations ({t['timeout_s']} s timeout): "
            "ms past the timeout, max",
            _range(t["max_over_timeout_ms"], ".1f"),
            f"{n - t['late']:,} of {n:,} within +{t['margin_s'] * 1000:.0f} ms; "
            f"{n - t['not_timed_out']:,} timed out",
            "",
            f"<= {t['margin_s'] * 1000:.0f} ms each",
            t["late"] == 0 and t["not_timed_out"] == 0,
        ),
        _row(
            "... failure record committed to on_failure, ms past the timeout, max",
            _range(t["record_max_over_timeout_ms"], ".1f"),
        ),
        _row(
            "reserved concurrency under that load, most in flight (sampled every ms)",
            str(t["max_in_flight"]),
            f"reserved {t['reserved_concurrency']}",
            "",
            f"<= {t['reserved_concurrency']}",
            t["max_in_flight"] <= t["reserved_concurrency"],
        ),
        _row(
            "another function's sync invokes/s under that load vs alone",
            _range(t["steady_under_load_vs_alone"], ".2f"),
        ),
    ]


def events_rows(v: dict[str, Any]) -> list[str]:
    p = v["in_process"]
    base = f"invoke_async {p['invoke_async']['median']:,.0f}/s"
    rows = [
        _row(
            f"event bus end to end, router.put_events, events/s ({v['events']:,})",
            _range(p["put_events"], ",.0f"),
            base,
            f"{v['put_events_vs_invoke_async']:.2f}x",
        ),
        _row(
            "event bus end to end, ctx.send(to_bus) from a function, events/s",
            _range(p["ctx_send"], ",.0f"),
            base,
            f"{v['ctx_send_vs_invoke_async']:.2f}x",
        ),
    ]
    h = v["http"]
    if "skipped" in h:
        rows.append(_row("PutEvents over HTTP", f"skipped: {h['skipped']}"))
    else:
        put, inv = h["put_events"], h["invoke_event"]
        rows += [
            _row(
                "PutEvents over HTTP (1 entry), req/s, 16 conn.",
                _range(put["rps"], ",.0f"),
                f"Invoke API Event {inv['rps']['median']:,.0f}/s",
                f"{h['put_vs_invoke_rps']:.2f}x",
            ),
            _row(
                "... end to end until the queue is empty, events/s",
                _range(put["end_to_end"], ",.0f"),
                f"Invoke API Event {inv['end_to_end']['median']:,.0f}/s",
                f"{h['put_vs_invoke_end_to_end']:.2f}x",
            ),
        ]
    m = v["matching"]
    ten = m["by_rules"]["10"]["indexed_us"]["median"]
    for count, row in m["by_rules"].items():
        top = count == "10000"
        rows.append(
            _row(
                f"rule matching, {int(count):,} rules, µs/event (scan of all: "
                f"{row['scan_us']['median']:.1f})",
                _range(row["indexed_us"], ".2f"),
                f"10 rules {ten:.2f} µs",
                f"{row['indexed_us']['median'] / ten:.2f}x",
                f"<= {m['goal']}x" if top else "",
                m["met"] if top else None,
            )
        )
    s = v["schedules"]
    ours, peer = s["eventrouter"], s["apscheduler"]
    rows += [
        _row(
            f"{s['count']:,} schedules firing at once (every {s['period_s']} s): "
            "lateness p50 / p99 / max, ms",
            f"{ours['p50_ms']:.0f} / {ours['p99_ms']:.0f} / {ours['max_ms']:.0f} "
            f"({ours['fires']:,} fires, durable)",
            f"APScheduler {peer['p50_ms']:.0f} / {peer['p99_ms']:.0f} / {peer['max_ms']:.0f} "
            f"({peer['fires']:,} run, {peer['missed']:,} missed, in memory)",
        ),
        _row(
            "memory per schedule, KB",
            f"{ours['kb_per_schedule']:.2f}",
            f"APScheduler job {peer['kb_per_schedule']:.2f} KB",
        ),
    ]
    u = v["under_load"]
    rows.append(
        _row(
            f"rate(1 second) lateness while a {u['backlog']:,}-event backlog drains: "
            "fired; invoked p50 / max, ms",
            f"{u['fired']['p50_ms']:.1f} / {u['fired']['max_ms']:.1f}; "
            f"{u['invoked']['p50_ms']:.1f} / {u['invoked']['max_ms']:.1f}",
            f"backlog {u['backlog_at_start']:,} -> {u['backlog_left']:,}",
        )
    )
    return rows


def startup_rows(u: dict[str, Any]) -> list[str]:
    demo, extra = u["demo_s"], u["sqs_over_aiobotocore_s"]
    return [
        _row(
            "start-up: the demo, process start to /readyz, s",
            _range(demo, ".3f"),
            f"python -c pass {u['pass_s']['median']:.3f} s",
            target=f"<= {u['demo_target_s']} s",
            met=demo["median"] <= u["demo_target_s"],
        ),
        _row(
            "start-up: a router with an SQS source (moto), s more than importing aiobotocore",
            _range(extra, ".3f"),
            f"import aiobotocore.session {u['aiobotocore_s']['median']:.3f} s; the router "
            f"{u['sqs_s']['median']:.3f} s",
            target=f"<= {u['sqs_extra_target_s']} s",
            met=extra["median"] <= u["sqs_extra_target_s"],
        ),
    ]


def summary_rows(results: dict[str, Any]) -> list[str]:
    rows = list(HEADER)
    builders = (
        (("invoke_overhead", "environments"), invoke_rows),
        (("async_throughput",), async_rows),
        (("http_throughput",), http_rows),
        (("streaming",), streaming_rows),
        (("kafka_throughput",), kafka_rows),
        (("sqs_throughput",), sqs_rows),
        (("kinesis_throughput",), kinesis_rows),
        (("notifications",), notification_rows),
        (("scaling",), scaling_rows),
        (("timeouts",), timeout_rows),
        (("events",), events_rows),
        (("workers",), worker_rows),
        (("startup",), startup_rows),
    )
    for names, build in builders:
        if all(name in results for name in names):
            rows += build(*(results[name] for name in names))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "--quick", action="store_true", help="seconds: check that every scenario runs"
    )
    parser.add_argument(
        "--only", nargs="+", choices=sorted(SCENARIOS), help="run these scenarios only"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="write the results and plots here (default: benchmarks/results for a full run "
        "of every scenario, nowhere otherwise)",
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"environment": environment(), "quick": args.quick}
    chosen = [name for name in SCENARIOS if not args.only or name in args.only]
    started = time.perf_counter()
    for i, name in enumerate(chosen, 1):
        progress(f"scenario {i}/{len(chosen)}: {name}")
        began = time.perf_counter()
        results[name] = SCENARIOS[name].run(quick=args.quick)
        progress(f"scenario {i}/{len(chosen)}: {name} done in {time.perf_counter() - began:.1f} s")
    results["seconds"] = time.perf_counter() - started
    summary = "\n".join(summary_rows(results))
    if args.quick:
        print("quick mode: every scenario ran; these figures are too small to mean anything")
    print(summary)
    out = args.out or (RESULTS if not args.quick and not args.only else None)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / "summary.md").write_text(summary + "\n")
        if not args.only:
            from benchmarks import history, plots

            drawn = plots.write_all(results, out)
            progress(f"wrote {out}/latest.json, summary.md and {', '.join(drawn)}")
            if out == RESULTS:
                line = history.record(results, results["environment"]["compiled"])
                progress(
                    f"appended {len(line['ratios'])} ratios to {history.RELATIVE} "
                    "(`make bench-compare` sets them against the last committed run)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
