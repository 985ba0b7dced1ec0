"""The benchmark history: which figures are ratios, and what counts as a move beyond noise."""

from __future__ import annotations

from typing import Any

from benchmarks.history import compare, noise, ratios

MACHINE = {"cpu_model": "x", "cpus": 2, "python": "3.11.7"}


def run(commit: str, dirty: bool = False, **values: float) -> dict[str, Any]:
    return {
        "when": "t",
        "commit": commit,
        "dirty": dirty,
        "machine": MACHINE,
        "compiled": True,
        "ratios": values,
    }


def test_ratios_are_the_figures_named_as_ratios() -> None:
    results = {
        "environment": {"cpus": 2},
        "http_throughput": {"by_connections": {"64": {"vs_sanic": 1.2, "rps": {"median": 9.0}}}},
        "async_throughput": {"ratio_to_bare_sqlite": 0.1, "met": True, "events": 50_000},
        "workers": {"speedup": 1.7, "target_speedup": 1.7},
        "http": {"targets": {"vs_bare": 1.0}, "64": {"p99_vs_bare": 0.9}},
        "sqs_throughput": {"cpu_per_message_vs_loop": 0.9},
        "kafka_throughput": {"batch_vs_ceiling": float("nan")},
    }
    assert ratios(results) == {
        "async_throughput.ratio_to_bare_sqlite": 0.1,
        "http.64.p99_vs_bare": 0.9,
        "http_throughput.by_connections.64.vs_sanic": 1.2,
        "sqs_throughput.cpu_per_message_vs_loop": 0.9,
        "workers.speedup": 1.7,
    }


def test_noise_is_measured_between_runs_of_one_unchanged_commit() -> None:
    runs = [run("a", r=1.0), run("a", r=1.1), run("b", r=2.0), run("c", True, r=1.0)]
    assert abs((noise(runs, "r") or 0) - 0.1) < 1e-9  # a -> a; not a -> b, nor the dirty c
    assert noise([run("a", r=1.0), run("b", r=1.5)], "r") is None


def test_a_move_beyond_the_noise_is_flagged_by_which_way_is_better() -> None:
    committed = [run("a", r=1.0, cpu_per_x=1.0), run("a", r=1.05, cpu_per_x=1.0)]
    newest = run("b", r=0.8, cpu_per_x=0.8, fresh=2.0)
    lines, worse = compare(committed, newest, committed[-1])
    table = {line.split()[0]: line for line in lines if line and line.split()[0] != "ratio"}
    assert table["r"].endswith("WORSE")  # -24 % where the noise is 5 %
    assert table["cpu_per_x"].endswith("better")  # smaller CPU per item is better (noise 3 %)
    assert table["fresh"].endswith("new")
    assert worse == 1
    _, none_worse = compare(committed, run("b", r=1.04, cpu_per_x=1.02), committed[-1])
    assert none_worse == 0  # within the noise
