"""What a query costs, before and after a change, in one run on one machine.

    python benchmarks/query_cost.py --before REF [--size 1000000] [--rounds 3]

Two versions of diplosearch answer the same questions: the code of git revision REF
(checked out into ``benchmarks/.work/query-cost/src-REF``) and the working tree. For each:

- **cold**: a new ``python -m diplosearch search QUESTION --json`` process on the
  shipped seeds (index built first, not timed; median of ``--runs``), next to the
  anchor ``python -c "import sentence_transformers"`` measured in the same run;
- **warm at scale**: ``Engine.search`` in one process that answers many queries, the
  generation loaded, over ``--size`` chunks (the real chunks and vectors of the State of
  the Union corpus, copied until the size is reached, each copy's vectors the real ones
  plus noise, written by each version's own commit path), p50 and p95 over the judged
  questions.

A shared machine's speed drifts by a third within minutes, so the two versions take
turns: cold runs alternate process by process, and the warm timing runs ``--rounds``
times per version, alternating, each round a new process; the table gives the median
round. Prints a Markdown table (paste it into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "what was said about the China-Kyrgyzstan-Uzbekistan railway"

#: Runs inside each version's interpreter: write the synthetic generation.
BUILD = r"""
import sys
from pathlib import Path
import numpy as np
from dataclasses import replace
from diplosearch.store import IndexStore

real, target, size = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
store = IndexStore(real)
manifest = store.read_manifest()
loaded = store.load(manifest.model, manifest.dimension)
chunks = list(loaded.chunks)
vectors = loaded.faiss_index.reconstruct_n(0, len(chunks))
rng = np.random.default_rng(0)
copies = -(-size // len(chunks))
all_chunks, parts, sources = [], [], {}
for k in range(copies):
    prefix = f"c{k:04d}/"
    all_chunks += [replace(c, source=prefix + c.source, sentences=((0, len(c.text)),))
                   for c in chunks]
    noisy = vectors if k == 0 else vectors + rng.normal(0, 0.02, vectors.shape)
    parts.append((noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32))
    sources.update({prefix + n: e for n, e in manifest.sources.items()})
all_chunks, matrix = all_chunks[:size], np.concatenate(parts)[:size]
kept = {}
for c in all_chunks:
    kept[c.source] = kept.get(c.source, 0) + 1
sources = {n: replace(sources[n], chunks=kept[n]) for n in sorted(kept)}
kind = "flat" if size <= 100_000 else "hnsw"
big = replace(manifest, sources=sources, chunks=len(all_chunks), index_type=kind)
target.mkdir(parents=True, exist_ok=True)
out = IndexStore(target)
__import__("shutil").copytree(real / "encoders", target / "encoders", dirs_exist_ok=True)
with out.writer_lock():
    out.write(big, all_chunks, matrix, np.zeros((0, manifest.dimension), np.float32))
"""

#: Runs inside each version's interpreter: time the judged questions, warm.
TIME = r"""
import json, statistics, sys, time
from pathlib import Path
from diplosearch.engine import Engine
from diplosearch.models import MiniLM

target, questions = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
try:  # a process that answers many queries says so (versions before "resident" cannot)
    model = MiniLM(resident=True)
except TypeError:
    model = MiniLM()
engine = Engine(Path("unused"), target, model)
result = {}
for mode in ("dense", "hybrid"):
    for q in questions[:10]:
        engine.search(q, 10, mode=mode, refresh=None)
    times = []
    for q in questions:
        started = time.perf_counter()
        engine.search(q, 10, mode=mode, refresh=None)
        times.append(time.perf_counter() - started)
    times.sort()
    result[mode] = [statistics.median(times), times[int(0.95 * (len(times) - 1))]]
print(json.dumps(result))
"""


#: Bytecode caches may be written, as on a user's machine (see cold_query.py's ``ENV``).
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def alternating(
    commands: dict[str, list[str]], runs: int, envs: dict[str, dict[str, str]], cwd: Path
) -> dict[str, float]:
    """Median seconds of ``runs`` new processes of each command, the commands taking
    turns (one untimed run of each first, to warm the file and bytecode caches). They
    run in ``cwd``, not the repository: ``python -m`` puts the current folder first on
    the path, and the repository's package would shadow the version under test."""
    for label, command in commands.items():
        subprocess.run(command, check=True, capture_output=True, env=envs[label], cwd=cwd)
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=envs[label], cwd=cwd)
            times[label].append(time.perf_counter() - started)
    return {label: statistics.median(t) for label, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision of the 'before' code")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=3, help="warm timing rounds per version")
    parser.add_argument("--keep", action="store_true", help="keep the large indexes")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work" / "query-cost")
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    before = work / f"src-{args.before}"
    if not before.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before],
            check=True,
            capture_output=True,
        )
    sys.path.insert(0, str(ROOT))
    from tests.corpora import JUDGEMENTS, write_corpus

    questions = [
        q["query"]
        for name in ("sotu", "bbc")
        for q in json.loads((JUDGEMENTS / f"{name}.json").read_text())["queries"]
    ]
    (work / "questions.json").write_text(json.dumps(questions))
    sotu = write_corpus("sotu", work / "sotu")
    seeds = write_corpus("seeds", work / "seeds")
    labels = {"before": before, "after": ROOT}
    envs = {
        label: dict(ENV, PYTHONPATH=str(source), HF_HUB_OFFLINE="1")
        for label, source in labels.items()
    }
    python = [sys.executable, "-m", "diplosearch"]
    bigs = {label: work / f"index-{args.size}-{label}" for label in labels}
    cold_commands = {}
    for label in labels:
        seeds_index, sotu_index = work / f"index-seeds-{label}", work / f"index-sotu-{label}"
        for corpus, index in ((seeds, seeds_index), (sotu, sotu_index)):
            where = ["--seeds", str(corpus), "--index", str(index)]
            subprocess.run(
                [*python, "index", *where], check=True, capture_output=True, env=envs[label],
                cwd=work,
            )  # fmt: skip
        cold_commands[label] = [
            *python, "search", QUESTION, "--json", "--seeds", str(seeds),
            "--index", str(seeds_index),
        ]  # fmt: skip
        if not (bigs[label] / "CURRENT").exists():
            subprocess.run(
                [sys.executable, "-c", BUILD, str(sotu_index), str(bigs[label]), str(args.size)],
                check=True, capture_output=True, env=envs[label], cwd=work,
            )  # fmt: skip
        print(f"{label}: indexes ready", file=sys.stderr)
    cold_commands["anchor"] = [sys.executable, "-c", "import sentence_transformers"]
    envs["anchor"] = dict(ENV)
    cold = alternating(cold_commands, args.runs, envs, work)
    anchor = cold.pop("anchor")
    rounds: dict[str, list[dict[str, list[float]]]] = {label: [] for label in labels}
    for _ in range(args.rounds):
        for label in labels:
            warm = subprocess.run(
                [sys.executable, "-c", TIME, str(bigs[label]), str(work / "questions.json")],
                check=True, capture_output=True, text=True, env=envs[label], cwd=work,
            )  # fmt: skip
            rounds[label].append(json.loads(warm.stdout.strip().splitlines()[-1]))
            print(f"{label}: {rounds[label][-1]}", file=sys.stderr)
    if not args.keep:
        for big in bigs.values():
            shutil.rmtree(big)

    def median_round(label: str, mode: str) -> list[float]:
        ordered = sorted(rounds[label], key=lambda r: r[mode][0])
        return ordered[len(ordered) // 2][mode]

    print(f"| | cold query, seeds (vs import) | warm dense p50 / p95 at {args.size:,} | "
          "warm hybrid p50 / p95 |")  # fmt: skip
    print("|---|---:|---:|---:|")
    for label in labels:
        dense, hybrid = median_round(label, "dense"), median_round(label, "hybrid")
        print(
            f"| {label} | {cold[label]:.3f} s ({cold[label] / anchor:.3f}×) | "
            f"{dense[0] * 1e3:.1f} / {dense[1] * 1e3:.1f} ms | "
            f"{hybrid[0] * 1e3:.1f} / {hybrid[1] * 1e3:.1f} ms |"
        )
    print(
        f"\n`import sentence_transformers`: {anchor:.2f} s (median of {args.runs}, same run); "
        f"warm: the median of {args.rounds} rounds per version"
    )


if __name__ == "__main__":
    main()
