"""What keeps diplosearch fast at size: index types, stat stamps, row-at-a-time reads,
one forward pass per passage, length-sorted batches, and the ONNX build backend."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import faiss
import numpy as np
import pytest
from click.testing import CliRunner

from diplosearch import ann, store
from diplosearch.cli import cli
from diplosearch.encoder import span_vectors
from diplosearch.engine import Engine
from diplosearch.errors import IndexCorruptError
from diplosearch.ingest import corpus
from diplosearch.models import BATCH_TOKENS, DEFAULT_MODEL, MAX_BATCH, _length_batches
from diplosearch.store import files as store_files
from diplosearch.store import loaded as store_loaded
from diplosearch.store import records as store_records

# -- index types --------------------------------------------------------------------------


def test_auto_is_exact_up_to_the_limit_then_hnsw():
    assert ann.resolve("auto", 10) == "flat"
    assert ann.resolve("auto", ann.FLAT_LIMIT) == "flat"
    assert ann.resolve("auto", ann.FLAT_LIMIT + 1) == "hnsw"
    assert ann.resolve("hnsw", 10) == "hnsw"
    assert ann.resolve("flat", 10**9) == "flat"
    with pytest.raises(ValueError):
        ann.resolve("ivf", 10)


def test_index_type_is_recorded_kept_by_refreshes_and_overridable(fake_engine: Engine, seeds):
    fake_engine.refresh()
    assert fake_engine.store.read_manifest().index_type == "flat"
    report = fake_engine.refresh(index_type="hnsw")
    assert report is not None and report.embedded == 0  # vectors came from the cache
    manifest = fake_engine.store.read_manifest()
    assert (manifest.index_type, manifest.index_request) == ("hnsw", "hnsw")
    loaded = fake_engine.store.load("test/hashing", 64)
    assert ann.kind_of(loaded.faiss_index) == "hnsw"
    assert fake_engine.search("railway Kyrgyzstan Uzbekistan", mode="dense").results

    path = next(seeds.glob("004_*.txt"))
    path.write_text(path.read_text(encoding="utf-8") + "\n\nOne more paragraph.\n", "utf-8")
    assert fake_engine.refresh() is not None
    assert fake_engine.store.read_manifest().index_type == "hnsw"  # kept
    assert fake_engine.refresh(index_type="hnsw") is None  # nothing to do
    fake_engine.refresh(index_type="auto")
    assert fake_engine.store.read_manifest().index_type == "flat"
    assert fake_engine.store.verify()[0] == []


def test_hnsw_parameters_keep_recall_against_exact_search(real_index):
    """Real MiniLM vectors of the seeds (passages and sentences), copied 26 times with
    noise as the benchmark does to reach 1M: HNSW with the shipped parameters finds at
    least 98% of the exact top 10 for real vectors as queries."""
    _, index = real_index
    real = store.IndexStore(index).load(DEFAULT_MODEL, 384)
    base = np.concatenate(
        [real.faiss_index.reconstruct_n(0, real.faiss_index.ntotal), real.sentence_vectors]
    )
    rng = np.random.default_rng(0)
    copies = [base] + [base + 0.02 * rng.standard_normal(base.shape) for _ in range(25)]
    vectors = np.concatenate(copies).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = base[rng.choice(len(base), 200, replace=False)].astype(np.float32)
    _, exact = ann.build("flat", vectors, 384).search(queries, 10)

    def recall(index) -> float:
        _, found = index.search(queries, 10)
        pairs = zip(exact, found, strict=True)
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in pairs]))

    assert recall(ann.build("hnsw", vectors, 384)) >= 0.98
    # The data tells parameters apart: a thin graph searched narrowly falls short.
    weak = faiss.IndexHNSWFlat(384, 4, faiss.METRIC_INNER_PRODUCT)
    weak.hnsw.efConstruction, weak.hnsw.efSearch = 8, 10
    weak.add(vectors)
    assert recall(weak) < 0.98


# -- the corpus check: stats, not reads -----------------------------------------------------


def count_reads(monkeypatch) -> list[str]:
    """Documents the corpus scan opens (it reads a file only to hash it)."""
    opened: list[str] = []
    real = corpus.open_regular

    def counting(location: str, *args, **kwargs):
        if location.endswith(".txt"):
            opened.append(Path(location).name)
        return real(location, *args, **kwargs)

    monkeypatch.setattr(corpus, "open_regular", counting)
    return opened


def count_index_hashes(monkeypatch) -> list[str]:
    hashed: list[str] = []
    real = store_files.file_sha256

    def counting(path):
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(store_files, "file_sha256", counting)
    return hashed


def age(folder: Path, seconds: float = 10) -> None:
    """Make files look written a while ago, as a real corpus's are (not 'racily clean')."""
    then = time.time() - seconds
    for path in folder.rglob("*.txt"):
        os.utime(path, (then, then))


def test_unchanged_corpus_is_checked_by_stat_alone(fake_engine: Engine, seeds, monkeypatch):
    age(seeds)
    time.sleep(2.3)  # ctime, moved by utime, must be older than the racy window too
    fake_engine.refresh()
    calls = count_reads(monkeypatch)
    assert fake_engine.refresh() is None
    assert calls == []  # no document was read


def test_same_size_edit_with_mtime_put_back_is_seen(fake_engine: Engine, seeds):
    age(seeds)
    time.sleep(2.3)
    fake_engine.refresh()
    path = next(seeds.glob("003_*.txt"))
    info = path.stat()
    data = path.read_bytes()
    path.write_bytes(data.replace(b"railway", b"RAILWAY", 1))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # the ctime still moves
    assert path.stat().st_size == info.st_size and path.stat().st_mtime_ns == info.st_mtime_ns
    report = fake_engine.refresh()
    assert report is not None and report.changes.changed == (path.name,)


def test_recently_written_file_is_hashed_every_time(fake_engine: Engine, seeds, monkeypatch):
    fake_engine.refresh()  # the seeds were just copied: all of them are 'racily clean'
    manifest = fake_engine.store.read_manifest()
    assert all(entry.stamp is None for entry in manifest.sources.values())
    calls = count_reads(monkeypatch)
    assert fake_engine.refresh() is None
    assert len(calls) == len(manifest.sources)


# -- index files: checksums once per change, always in verify --------------------------------


def test_index_files_are_hashed_once_then_trusted_until_they_change(
    fake_engine: Engine, monkeypatch
):
    fake_engine.refresh()
    fake_engine.refresh(rebuild=True)  # two generations: the older one is the fallback
    calls = count_index_hashes(monkeypatch)
    fake_engine.store.load("test/hashing", 64)
    assert calls == []  # stamped at commit
    problems, _ = fake_engine.store.verify()
    assert problems == [] and len(calls) >= 2 * len(store.DATA_FILES)  # verify reads all

    live = fake_engine.store.root / fake_engine.store.current() / store.VECTORS
    info = live.stat()
    data = bytearray(live.read_bytes())
    data[-5] ^= 0xFF
    live.write_bytes(bytes(data))
    os.utime(live, ns=(info.st_atime_ns, info.st_mtime_ns))  # same size, same mtime
    fresh = store.IndexStore(fake_engine.store.root)
    loaded = fresh.load("test/hashing", 64)  # the previous generation answers
    assert loaded.manifest.generation != live.parent.name
    assert any("checksum mismatch" in n for n in fresh.notices)


def test_a_query_reads_only_the_rows_it_shows(fake_engine: Engine):
    fake_engine.refresh()
    loaded = fake_engine.store.load("test/hashing", 64)
    fake_engine.store.load = lambda *a, **k: loaded  # type: ignore[method-assign]
    fake_engine.search("railway", k=3, mode="dense")
    # the candidates duplicate folding looks at (5k + 50), not the 240-odd rows
    assert 0 < len(loaded.chunks._parsed) <= 5 * 3 + 50 < len(loaded.chunks)
    # A row read again is the same object; slices and negative rows read as a list does.
    row = next(iter(loaded.chunks._parsed))
    assert loaded.chunks[row] is loaded.chunks[row]
    assert loaded.chunks[-1] == loaded.chunks[len(loaded.chunks) - 1]
    assert loaded.chunks[row : row + 2] == [loaded.chunks[row], loaded.chunks[row + 1]]


def test_row_table_that_disagrees_with_the_chunk_table_is_refused(fake_engine: Engine):
    fake_engine.refresh()
    root = fake_engine.store.root
    name = fake_engine.store.current()
    rows = np.load(root / name / store.ROWS)
    rows[3, 0] += 1  # a row starting one byte late, with every checksum made to agree
    path = root / name / store.ROWS
    path.unlink()
    np.save(path, rows)
    manifest = json.loads((root / name / store.MANIFEST).read_text())
    entry = {"sha256": store_files.file_sha256(path), "size": path.stat().st_size}
    manifest["files"][store.ROWS] = entry
    text = json.dumps(manifest)
    (root / name / store.MANIFEST).write_text(text)
    pointer = store.Pointer(live=(name, store_records._sha256(text.encode())), previous=None)
    (root / store.CURRENT).write_text(pointer.to_text())
    loaded = store.IndexStore(root).load("test/hashing", 64)
    with pytest.raises(IndexCorruptError, match=r"row [23]"):
        [loaded.chunks[i] for i in (2, 3)]
    problems, _ = store.IndexStore(root).verify()
    assert any("row" in p for p in problems)


# -- embedding -------------------------------------------------------------------------------


def test_span_vectors_pool_the_tokens_of_each_span():
    hidden = np.array([[9, 9], [1, 0], [3, 0], [0, 2], [9, 9]], dtype=np.float32)
    offsets = [(0, 0), (0, 5), (6, 10), (12, 20), (0, 0)]  # [CLS] two words | one [SEP]
    vectors = span_vectors(hidden, offsets, [(0, 11), (12, 20), (30, 40)])
    assert np.allclose(vectors[0], [1, 0]) and np.allclose(vectors[1], [0, 1])
    whole = hidden.mean(axis=0)
    assert np.allclose(vectors[2], whole / np.linalg.norm(whole))  # no token: the text's


def test_length_batches_pad_little_and_keep_every_text():
    class Encoding:
        def __init__(self, n: int) -> None:
            self.ids = [0] * n

    lengths = [5, 200, 7, 64, 256, 3, 30, 30, 90] * 40
    batches = _length_batches([Encoding(n) for n in lengths])
    seen = sorted(i for batch in batches for i, _ in batch)
    assert seen == list(range(len(lengths)))
    for batch in batches:
        widths = [len(e.ids) for _, e in batch]
        assert widths == sorted(widths)
        assert len(batch) <= MAX_BATCH
        assert len(batch) == 1 or len(batch) * widths[-1] <= BATCH_TOKENS


def test_onnx_backend_and_hnsw_through_the_cli_equal_the_torch_build(real_index, tmp_path):
    seeds, local = real_index
    target = tmp_path / "index"
    args = ["--seeds", str(seeds), "--index", str(target)]
    result = CliRunner().invoke(cli, ["index", "--backend", "onnx", "--index-type", "hnsw", *args])
    assert result.exit_code == 0, result.output
    status = json.loads(CliRunner().invoke(cli, ["status", "--json", *args]).stdout)
    assert status["index_type"] == "hnsw" and status["fresh"] is True
    a = store.IndexStore(local).load(DEFAULT_MODEL, 384)
    b = store.IndexStore(target).load(DEFAULT_MODEL, 384)
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    n = a.faiss_index.ntotal
    difference = a.faiss_index.reconstruct_n(0, n) - b.faiss_index.reconstruct_n(0, n)
    assert np.abs(difference).max() < 1e-4
    assert np.abs(np.asarray(a.sentence_vectors) - np.asarray(b.sentence_vectors)).max() < 1e-4
    search = CliRunner().invoke(cli, ["search", "railway", "--json", *args])
    assert search.exit_code == 0 and json.loads(search.stdout)["results"]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("share", [0.01, 0.9])
def test_filtered_dense_search_returns_the_best_allowed_rows(kind, share, monkeypatch):
    """A narrow filter is searched exactly over its rows; a wide one inside FAISS."""
    monkeypatch.setattr(store_loaded, "EXACT_SUBSET", 500)
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ann.build(kind, vectors, 32)
    allowed = set(rng.choice(3000, int(3000 * share), replace=False).tolist())
    query = vectors[7]
    found = store.nearest(index, query, 10, allowed)
    rows = np.array(sorted(allowed))
    best = rows[np.argsort(-(vectors[rows] @ query))[:10]]
    assert all(row in allowed for row, _ in found)
    assert len({row for row, _ in found} & set(best.tolist())) >= 9
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    assert store.nearest(index, query, 10, set()) == []


def test_bf16_backend_agrees_with_float32(real_index, tmp_path):
    """bfloat16 is offered because it keeps every passage's vector at cosine >= 0.999 to
    float32 (the issue asks 0.99) while running about twice as fast where the CPU has it."""
    seeds, local = real_index
    target = tmp_path / "index"
    args = ["--seeds", str(seeds), "--index", str(target)]
    result = CliRunner().invoke(cli, ["index", "--backend", "bf16", *args])
    assert result.exit_code == 0, result.output
    a = store.IndexStore(local).load(DEFAULT_MODEL, 384)
    b = store.IndexStore(target).load(DEFAULT_MODEL, 384)
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    n = a.faiss_index.ntotal
    cosines = (a.faiss_index.reconstruct_n(0, n) * b.faiss_index.reconstruct_n(0, n)).sum(1)
    assert n > 150 and cosines.min() >= 0.999, cosines.min()
    sentences = (np.asarray(a.sentence_vectors) * np.asarray(b.sentence_vectors)).sum(1)
    assert sentences.min() >= 0.999
