"""The PNG plots of a full run (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import NullLocator

OURS = "#1f6feb"
CEILING = "#8c959f"
PEER = "#d4a72c"


def _bars(ax: Any, title: str, unit: str, bars: list[tuple[str, dict[str, float], str]]) -> None:
    """One panel: median bars with min-max whiskers."""
    labels = [label for label, _, _ in bars]
    medians = [stats["median"] for _, stats, _ in bars]
    low = [stats["median"] - stats["min"] for _, stats, _ in bars]
    high = [stats["max"] - stats["median"] for _, stats, _ in bars]
    ax.bar(labels, medians, color=[c for _, _, c in bars], yerr=[low, high], capsize=3)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(axis="x", labelsize=7, rotation=20)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.3)


def throughput(results: dict[str, Any], path: Path) -> None:
    """Throughput by scenario: eventrouter (blue) against its ceiling (grey) and peers (ochre)."""
    panels = []
    a = results["async_throughput"]
    panels.append(
        (
            "async invoke, end to end",
            "events/s",
            [
                ("durable", a["eventrouter_events_per_s"], OURS),
                ("in-memory DB", a["in_memory_events_per_s"], OURS),
            ],
        )
    )
    h = results["http_throughput"]
    if "skipped" not in h:
        top = h["by_connections"][str(max(h["connections"]))]
        panels.append(
            (
                f"HTTP no-op, {max(h['connections'])} connections",
                "requests/s",
                [
                    ("limit", top["limit"]["rps"], CEILING),
                    ("bare ASGI", top["bare_asgi"]["rps"], CEILING),
                    ("route", top["eventrouter"]["rps"], OURS),
                    ("Invoke API", top["invoke_api"]["rps"], OURS),
                    ("Sanic", top["sanic"]["rps"], PEER),
                    ("FastAPI", top["fastapi"]["rps"], PEER),
                ],
            )
        )
    k = results["kafka_throughput"]
    kafka = [
        ("aiokafka loop", k["ceiling"], CEILING),
        ("batch", k["batch"], OURS),
        ("per-record", k["per_record"], OURS),
    ]
    kafka += [
        (peer, k[key], PEER)
        for peer, key in (("FastStream", "faststream"), ("Faust", "faust"))
        if key in k
    ]
    panels.append((f"Kafka, {k['partitions']} partitions", "records/s", kafka))
    q = results["sqs_throughput"]
    panels.append(
        (
            "SQS on moto",
            "messages/s",
            [
                ("aiobotocore loop", q["loop_messages_per_s"], CEILING),
                ("eventrouter", q["eventrouter_messages_per_s"], OURS),
            ],
        )
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8))
    for ax, (title, unit, bars) in zip(axes, panels, strict=True):
        _bars(ax, title, unit, bars)
    fig.suptitle(
        "Throughput: eventrouter (blue) vs ceiling (grey) and peers (ochre); "
        "median, whiskers min-max",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def http_latency(h: dict[str, Any], path: Path) -> None:
    """Latency percentiles of every HTTP contender, one panel per connection count."""
    counts = h["connections"]
    fig, axes = plt.subplots(1, len(counts), figsize=(5 * len(counts), 3.8))
    styles = {
        "eventrouter": ("route", OURS, "-"),
        "invoke_api": ("Invoke API", OURS, "--"),
        "limit": ("no-framework limit", CEILING, ":"),
        "bare_asgi": ("bare ASGI", CEILING, "-"),
        "sanic": ("Sanic", PEER, "--"),
        "fastapi": ("FastAPI", PEER, "-"),
    }
    for ax, c in zip(axes, counts, strict=True):
        for kind, (label, color, line) in styles.items():
            points = h["by_connections"][str(c)][kind]["percentiles_ms"]
            ax.plot(
                [p / 100 for p, _ in points],
                [ms for _, ms in points],
                line,
                color=color,
                label=label,
                marker=".",
            )
        ax.set_xscale("logit")  # spreads the tail: 90, 99, 99.9 % equally apart
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(0.01, 0.9999)
        ax.set_xticks([0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999])
        ax.set_xticklabels(["1", "10", "50", "90", "99", "99.9", "99.99"], fontsize=7)
        ax.set_xlabel("percentile", fontsize=8)
        ax.set_yscale("log")  # the body and the tail in one view
        ax.set_ylabel("latency, ms", fontsize=8)
        ax.set_title(f"{c} connection{'s' if c > 1 else ''}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("HTTP latency distribution (wrk, median run)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def kafka_partitions(k: dict[str, Any], path: Path) -> None:
    counts = sorted(int(n) for n in k["by_partitions"])
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for key, label, color in (
        ("ceiling", "aiokafka loop", CEILING),
        ("batch", "eventrouter batch", OURS),
    ):
        stats = [k["by_partitions"][str(n)][key] for n in counts]
        medians = [s["median"] for s in stats]
        ax.errorbar(
            counts,
            medians,
            yerr=[
                [m - s["min"] for m, s in zip(medians, stats, strict=True)],
                [s["max"] - m for m, s in zip(medians, stats, strict=True)],
            ],
            label=label,
            color=color,
            marker="o",
            capsize=3,
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts)
    ax.set_xticklabels([str(n) for n in counts])
    ax.set_xlabel("partitions")
    ax.set_ylabel("records/s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Kafka throughput vs partitions ({k['records']:,} records)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sqs_pollers(history: list[tuple[float, int]], path: Path) -> None:
    xs, ys = [], []
    for (t, n), nxt in zip(history, [*history[1:], None], strict=True):
        xs.append(t)
        ys.append(n)
        if nxt is not None:
            xs.append(nxt[0])
            ys.append(n)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(xs, ys, drawstyle="steps-post", color=OURS)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("pollers")
    ax.set_title("SQS pollers while a backlog drains (moto)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(results: dict[str, Any], folder: Path) -> list[str]:
    """Draw every plot into ``folder``; the file names."""
    folder.mkdir(exist_ok=True)
    written = ["throughput.png"]
    throughput(results, folder / "throughput.png")
    if "skipped" not in results["http_throughput"]:
        http_latency(results["http_throughput"], folder / "http_latency.png")
        written.append("http_latency.png")
    kafka_partitions(results["kafka_throughput"], folder / "kafka_partitions.png")
    written.append("kafka_partitions.png")
    sqs_pollers(results["sqs_throughput"]["poller_history"], folder / "sqs_pollers.png")
    written.append("sqs_pollers.png")
    return written


def main() -> None:
    """``python -m benchmarks.plots``: draw the plots again from ``results/latest.json``."""
    import json

    folder = Path(__file__).parent / "results"
    print(write_all(json.loads((folder / "latest.json").read_text()), folder))


if __name__ == "__main__":
    main()
