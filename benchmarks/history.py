"""The benchmark history: each full ``make bench`` appends its ratios to ``history.jsonl``;
``python -m benchmarks.history`` (``make bench-compare``) sets the newest run against the last
committed one and flags the ratios that moved beyond their noise.

A line holds the machine (CPU model and count, Python), the commit (and whether the tree had
changes), whether the hot modules ran compiled, and every *ratio* of the run: each figure whose
name says it is one (``..._vs_...``, ``ratio...``, ``speedup``), by its dotted path
(``http_throughput.by_connections.64.vs_bare_asgi``). Ratios, not rates: both sides of a ratio
are measured in the same run, interleaved, so a ratio moves with the code, not with the load
of the machine.

The noise of a ratio is how far it moved between repeated runs of one commit on the same
machine (the largest such move, at least :data:`MIN_NOISE`); before a repeated run has
measured it, :data:`DEFAULT_NOISE`. A move beyond it is flagged, ``better`` or ``worse`` by
whether a larger ratio is the better one (all but the costs of :data:`LOWER_IS_BETTER`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.ab import flatten

ROOT = Path(__file__).resolve().parent.parent
HISTORY = Path(__file__).parent / "history.jsonl"
RELATIVE = HISTORY.relative_to(ROOT).as_posix()
#: The code a run measures (a change there makes the run's commit "dirty"); not what the run
#: itself writes.
MEASURED = ("eventrouter", "benchmarks", ":(exclude)benchmarks/results", f":(exclude){RELATIVE}")
#: Names of the figures that are ratios of two figures measured in the same run (not the
#: ``target...`` they are held to).
RATIO = re.compile(r"(^|[._])(vs_|ratio|speedup)|_vs_")
#: A target a ratio is held to (``targets.vs_bare``, ``target_speedup``): not measured.
TARGET = re.compile(r"(^|\.)targets?[._]")
#: Ratios of costs, where smaller is better: CPU per item, latency, start-up times, the cost
#: of 10,000 rules against 10.
LOWER_IS_BETTER = re.compile(
    r"cpu_per_|p99_vs|cold_start_vs|snapstart_vs_bare|isolated_vs|matching\.ratio_"
)
#: The noise assumed before two runs on a machine have measured it (±10 %), and the least.
DEFAULT_NOISE = 0.10
MIN_NOISE = 0.03


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """Every ratio among ``results``' figures, by dotted path (finite, positive ones)."""
    figures = flatten({k: v for k, v in results.items() if k != "environment"})
    return {
        name: round(value, 4)
        for name, value in sorted(figures.items())
        if RATIO.search(name.rsplit(".", 1)[-1])
        and not TARGET.search(name)
        and math.isfinite(value)
        and value > 0
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def entry(results: dict[str, Any], compiled: bool) -> dict[str, Any]:
    machine = results["environment"]
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _git("rev-parse", "--short=12", "HEAD") or None,
        "dirty": bool(_git("status", "--porcelain", "--", *MEASURED)),
        "machine": {
            "cpu_model": machine.get("cpu_model"),
            "cpus": machine.get("cpus"),
            "python": machine.get("python"),
        },
        "compiled": compiled,
        "ratios": ratios(results),
    }


def record(results: dict[str, Any], compiled: bool, path: Path = HISTORY) -> dict[str, Any]:
    """Append this run's line to the history; the line."""
    line = entry(results, compiled)
    with path.open("a") as f:
        f.write(json.dumps(line, sort_keys=True) + "\n")
    return line


def parse(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def noise(runs: list[dict[str, Any]], name: str) -> float | None:
    """The largest relative move of ratio ``name`` between repeated runs: consecutive ``runs``
    of one unchanged commit, both compiled or both not (None before any such pair has it)."""
    moves = [
        abs(b["ratios"][name] / a["ratios"][name] - 1)
        for a, b in itertools.pairwise(runs)
        if _repeat(a, b) and name in a["ratios"] and name in b["ratios"]
    ]
    return max(max(moves), MIN_NOISE) if moves else None


def _repeat(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (
        a["commit"] == b["commit"]
        and not a["dirty"]
        and not b["dirty"]
        and a["compiled"] == b["compiled"]
        and a["machine"] == b["machine"]
    )


def compare(
    committed: list[dict[str, Any]], newest: dict[str, Any], baseline: dict[str, Any]
) -> tuple[list[str], int]:
    """The report of ``newest`` against ``baseline`` (the last committed run), each ratio's
    noise measured over ``committed`` runs on the same machine; and how many moved worse."""
    same = [run for run in committed if run["machine"] == newest["machine"]]
    lines = [
        f"newest: {newest['commit']}{' (changed tree)' if newest['dirty'] else ''} "
        f"{newest['when']}, compiled={newest['compiled']}",
        f"against: {baseline['commit']} {baseline['when']}, compiled={baseline['compiled']}"
        + ("" if baseline["machine"] == newest["machine"] else " (another machine!)"),
        "",
        f"{'ratio':<62} {'then':>7} {'now':>7} {'move':>7} {'noise':>6}  verdict",
    ]
    worse = 0
    for name, now in newest["ratios"].items():
        then = baseline["ratios"].get(name)
        if then is None:
            lines.append(f"{name:<62} {'-':>7} {now:7.3f} {'':>7} {'':>6}  new")
            continue
        move = now / then - 1
        band = noise(same, name)
        measured = band is not None
        band = band if band is not None else DEFAULT_NOISE
        verdict = ""
        if abs(move) > band:
            better = (move > 0) != bool(LOWER_IS_BETTER.search(name))
            verdict = "better" if better else "WORSE"
            worse += not better
        shown = f"{band:6.0%}" if measured else f"({band:.0%})"
        lines.append(f"{name:<62} {then:7.3f} {now:7.3f} {move:+7.1%} {shown:>6}  {verdict}")
    lines += [
        "",
        "noise: the largest move between repeated committed runs of one commit on this "
        f"machine; (n%) where none measured it yet (±{DEFAULT_NOISE:.0%} assumed). "
        "The exit status is 1 when a ratio moved worse beyond its noise.",
    ]
    return lines, worse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.history",
        description="the newest benchmark run against the last committed one",
    )
    parser.parse_args(argv)
    committed = parse(_git("show", f"HEAD:{RELATIVE}"))
    current = parse(HISTORY.read_text()) if HISTORY.exists() else []
    if not current:
        print(f"no benchmark run recorded yet in {RELATIVE}: run `make bench` first")
        return 1
    newest = current[-1]
    # Against the last committed run that is not the newest run itself.
    earlier = [run for run in committed if run != newest]
    if not earlier:
        print("no earlier committed run to compare with: commit this one, then bench again")
        return 0
    lines, worse = compare(earlier, newest, earlier[-1])
    print("\n".join(lines))
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
