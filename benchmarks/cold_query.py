"""Cold-query benchmark: a whole new `diplosearch search --json` process, against the cost
of merely importing sentence-transformers (what a naive CLI pays on every question).

    python benchmarks/cold_query.py [--runs 15] [--seeds seeds] [--index index]

Builds the index first if needed (not timed), runs each command once untimed to warm the
OS file cache, then reports medians over --runs new processes, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUESTION = "what was said about the China-Kyrgyzstan-Uzbekistan railway"


#: The environment of every timed process. Python writes each module's compiled bytecode
#: the first time it imports it, and pip compiles installed packages: a user's second
#: query reads bytecode. A machine that sets PYTHONDONTWRITEBYTECODE would make every
#: timed search compile diplosearch from source while the anchor's packages stay
#: compiled, so it is unset here (the untimed first run writes the caches).
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, check=True, capture_output=True, env=ENV)  # warm the caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=ENV)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--seeds", default="seeds")
    parser.add_argument("--index", default="index")
    args = parser.parse_args()

    exe = shutil.which("diplosearch", path=str(Path(sys.executable).parent)) or "diplosearch"
    corpus = ["--seeds", args.seeds, "--index", args.index]
    subprocess.run([exe, "index", *corpus], check=True)

    rows = {
        "diplosearch search --json (new process)": timed(
            [exe, "search", QUESTION, "--json", *corpus], args.runs
        ),
        'python -c "import sentence_transformers"': timed(
            [sys.executable, "-c", "import sentence_transformers"], args.runs
        ),
    }
    medians = {name: statistics.median(times) for name, times in rows.items()}
    ours, naive = medians.values()
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"\nmachine: {machine}, Python {platform.python_version()}")
    print(f"runs: {args.runs} new processes each\n")
    print("| command | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    for name, times in rows.items():
        print(f"| `{name}` | {medians[name]:.3f} | {min(times):.3f} | {max(times):.3f} |")
    print(f"\nratio search / import sentence_transformers: {ours / naive:.1%}")
    print(
        f"targets: median <= 0.8 s: {'met' if ours <= 0.8 else 'MISSED'}; "
        f"ratio <= 10%: {'met' if ours / naive <= 0.10 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
