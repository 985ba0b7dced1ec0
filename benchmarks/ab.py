"""``python -m benchmarks.ab REF [--only NAME ...] [--rounds N]``: this checkout against
another commit, scenario by scenario, the two interleaved (the machines are shared and noisy).

``REF`` is checked out in a temporary git worktree; each round runs each scenario once in a
fresh process per side (REF's code first on even rounds, ours first on odd ones) and the
report gives, per numeric figure, the median of each side and their ratio (ours / REF).
Figures are those the scenario's ``run()`` returns, flattened (``by_connections.64.rps``).

``REF`` = ``pure`` compares this checkout with itself run as pure Python
(``EVENTROUTER_PURE_PYTHON=1``): what the compiled hot path gains (``make compile`` first).
A worktree of another commit is never compiled: it runs as pure Python.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from eventrouter.compiled import PURE_ENV

ROOT = Path(__file__).resolve().parent.parent
HOT_PATHS = ["invoke_overhead", "http_throughput", "kafka_throughput", "sqs_throughput"]


def flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a result, by dotted path."""
    if isinstance(value, bool):
        return {}
    if isinstance(value, (int, float)):
        return {prefix: float(value)}
    out: dict[str, float] = {}
    if isinstance(value, dict):
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    return out


def run_once(
    tree: Path, scenario: str, quick: bool, extra: dict[str, str] | None = None
) -> dict[str, float]:
    code = (
        "import json, sys\n"
        f"from benchmarks import {scenario} as m\n"
        f"json.dump(m.run(quick={quick}), sys.stdout, default=str)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tree), **(extra or {})}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True
    )
    return flatten(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab")
    parser.add_argument(
        "ref", help="the commit to compare with (e.g. HEAD~5, a tag), or `pure`: this checkout"
    )
    parser.add_argument("--only", nargs="*", default=HOT_PATHS, help="scenarios")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (checks it runs)")
    parser.add_argument("--keys", nargs="*", default=None, help="report only these figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eventrouter-ab-") as folder:
        pure = args.ref == "pure"
        other = ROOT if pure else Path(folder) / "ref"
        if not pure:
            subprocess.run(
                ["git", "worktree", "add", "--detach", "-q", str(other), args.ref],
                cwd=ROOT,
                check=True,
            )
        ref_env = {PURE_ENV: "1"} if pure else {}
        try:
            for scenario in args.only:
                sides: dict[str, list[dict[str, float]]] = {"ours": [], "ref": []}
                for n in range(args.rounds):
                    order = [("ref", other, ref_env), ("ours", ROOT, {})]
                    for side, tree, env in order if n % 2 == 0 else order[::-1]:
                        sides[side].append(run_once(tree, scenario, args.quick, env))
                print(f"## {scenario} ({args.rounds} rounds; ratio = ours / {args.ref})")
                print("| figure | ours | ref | ratio |\n|---|---|---|---|")
                keys = sorted(set(sides["ours"][0]) & set(sides["ref"][0]))
                for key in keys:
                    if args.keys and not any(key.startswith(k) for k in args.keys):
                        continue
                    ours = statistics.median(r[key] for r in sides["ours"] if key in r)
                    ref = statistics.median(r[key] for r in sides["ref"] if key in r)
                    ratio = f"{ours / ref:.3f}" if ref else "-"
                    print(f"| {key} | {ours:.4g} | {ref:.4g} | {ratio} |")
                print(flush=True)
        finally:
            if not pure:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
