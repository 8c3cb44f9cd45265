"""What a query costs, before and after a change, in one run on one machine.

    python benchmarks/query_cost.py --before REF [--size 1000000]

Two versions of diplosearch answer the same questions: the code of git revision REF
(checked out into ``benchmarks/.work/query-cost/REF``) and the working tree. For each:

- **cold**: a new ``python -m diplosearch search QUESTION --json`` process on the
  shipped seeds (index built first, not timed; median of ``--runs``), next to the
  anchor ``python -c "import sentence_transformers"`` measured in the same run;
- **warm at scale**: ``Engine.search`` in one process, the generation loaded, over
  ``--size`` chunks (the real chunks and vectors of the State of the Union corpus,
  copied until the size is reached, each copy's vectors the real ones plus noise,
  written by each version's own commit path), p50 and p95 over the judged questions.

Prints a Markdown table (paste it into benchmarks/RESULTS.md).
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

#: Runs inside each version's interpreter: build the synthetic generation, time queries.
WARM = r"""
import json, statistics, sys, time
from pathlib import Path
import numpy as np
from dataclasses import replace
from diplosearch.engine import Engine
from diplosearch.store import IndexStore

real, target, size, queries = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
questions = json.loads(Path(queries).read_text())
store = IndexStore(real)
manifest = store.read_manifest()
loaded = store.load(manifest.model, manifest.dimension)
chunks = list(loaded.chunks)
vectors = loaded.faiss_index.reconstruct_n(0, len(chunks))
if not (target / "CURRENT").exists():
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
    shutil = __import__("shutil")
    shutil.copytree(real / "encoders", target / "encoders", dirs_exist_ok=True)
    with out.writer_lock():
        out.write(big, all_chunks, matrix, np.zeros((0, manifest.dimension), np.float32))
engine = Engine(Path("unused"), target)
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


def timed(command: list[str], runs: int, env: dict[str, str], cwd: Path) -> float:
    """Median seconds of ``runs`` new processes (one untimed first, to warm the file cache).
    They run in ``cwd``, not the repository: ``python -m`` puts the current folder first
    on the path, and the repository's package would shadow the version under test."""
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=cwd)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env, cwd=cwd)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision of the 'before' code")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=11)
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
    rows = {}
    for label, source in (("before", before), ("after", ROOT)):
        env = dict(os.environ, PYTHONPATH=str(source), HF_HUB_OFFLINE="1")
        python = [sys.executable, "-m", "diplosearch"]
        seeds_index, sotu_index = work / f"index-seeds-{label}", work / f"index-sotu-{label}"
        for corpus, index in ((seeds, seeds_index), (sotu, sotu_index)):
            where = ["--seeds", str(corpus), "--index", str(index)]
            subprocess.run(
                [*python, "index", *where], check=True, capture_output=True, env=env, cwd=work
            )
        cold = timed(
            [
                *python,
                "search",
                QUESTION,
                "--json",
                "--seeds",
                str(seeds),
                "--index",
                str(seeds_index),
            ],
            args.runs,
            env,
            work,
        )
        big = work / f"index-{args.size}-{label}"
        warm = subprocess.run(
            [sys.executable, "-c", WARM, str(sotu_index), str(big), str(args.size),
             str(work / "questions.json")],
            check=True, capture_output=True, text=True, env=env, cwd=work,
        )  # fmt: skip
        rows[label] = {"cold": cold, **json.loads(warm.stdout.strip().splitlines()[-1])}
        shutil.rmtree(big)
        print(f"{label}: {rows[label]}", file=sys.stderr)
    anchor = timed(
        [sys.executable, "-c", "import sentence_transformers"], 5, dict(os.environ), work
    )
    print(f"| | cold query, seeds (vs import) | warm dense p50 / p95 at {args.size:,} | "
          "warm hybrid p50 / p95 |")  # fmt: skip
    print("|---|---:|---:|---:|")
    for label, r in rows.items():
        print(
            f"| {label} | {r['cold']:.3f} s ({r['cold'] / anchor:.3f}×) | "
            f"{r['dense'][0] * 1e3:.1f} / {r['dense'][1] * 1e3:.1f} ms | "
            f"{r['hybrid'][0] * 1e3:.1f} / {r['hybrid'][1] * 1e3:.1f} ms |"
        )
    print(f"\n`import sentence_transformers`: {anchor:.2f} s (median of 5, same run)")


if __name__ == "__main__":
    main()
