"""Index life cycle with a counting model: incremental refresh, staleness, storage errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest

from diplosearch import store
from diplosearch.engine import Engine
from diplosearch.errors import (
    CorpusError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    IndexWriteError,
)
from diplosearch.store import IndexStore, nearest
from diplosearch.store import files as store_files
from tests.fakes import HashingModel

RAILWAY = "China-Kyrgyzstan-Uzbekistan railway"


def rewrite_manifest(engine: Engine, change) -> None:
    """Edit the live manifest and re-point CURRENT at it, as a different build would."""
    name = engine.store.current()
    path = engine.store.root / name / store.MANIFEST
    data = json.loads(path.read_text())
    change(data)
    text = json.dumps(data).encode()
    path.write_bytes(text)
    pointer = store.Pointer(live=(name, hashlib.sha256(text).hexdigest()), previous=None)
    (engine.store.root / store.CURRENT).write_text(pointer.to_text())


def texts_of(engine: Engine) -> list[str]:
    loaded = engine.store.load(engine.model.name, engine.model.dimension)
    return [c.text for c in loaded.chunks]


def test_first_search_builds_then_fresh_index_is_reused(fake_engine: Engine):
    model = fake_engine.model
    response = fake_engine.search(RAILWAY, k=5)
    assert response.refreshed is not None
    total = response.refreshed.chunks
    assert response.refreshed.embedded == len(set(texts_of(fake_engine)))
    # One pass per distinct passage: its sentences' vectors come from the same pass.
    assert len(model.embedded) == response.refreshed.embedded
    assert response.refreshed.embedded_sentences > 50
    assert total == len(texts_of(fake_engine)) > 150
    first = len(model.embedded)
    again = fake_engine.search(RAILWAY, k=5)
    assert again.refreshed is None
    assert len(model.embedded) == first  # nothing re-embedded
    assert [r.chunk_id for r in again.results] == [r.chunk_id for r in response.results]


def test_add_edit_delete_reembeds_exactly_the_changed_chunks(fake_engine: Engine, seeds: Path):
    model = fake_engine.model
    fake_engine.refresh()
    before = set(texts_of(fake_engine))
    model.embedded.clear()

    (seeds / "005_new.txt").write_text(
        "Railway talks resume\n\n"
        "Ministers said the China-Kyrgyzstan-Uzbekistan railway will open in 2030.\n\n"
        "They also discussed road freight.\n",
        encoding="utf-8",
    )
    edited = next(seeds.glob("004_*.txt"))
    text = edited.read_text(encoding="utf-8")
    edited.write_text(
        text.replace("Wang called on the two sides", "Wang urged the two sides"), encoding="utf-8"
    )
    removed = next(seeds.glob("000_*.txt"))
    removed.unlink()

    response = fake_engine.search(RAILWAY, k=50)
    report = response.refreshed
    assert report is not None
    assert report.changes.added == ("005_new.txt",)
    assert report.changes.changed == (edited.name,)
    assert report.changes.removed == (removed.name,)

    after = set(texts_of(fake_engine))
    new_texts = after - before
    assert len(new_texts) == 3  # two new paragraphs, one edited paragraph
    loaded = fake_engine.store.load(model.name, model.dimension)
    new_sentences = [s for c in loaded.chunks if c.text in new_texts for s in c.sentence_texts]
    assert sorted(model.embedded) == sorted(new_texts)  # sentences ride on their passage
    assert report.embedded_sentences == len(new_sentences)
    assert report.embedded == 3

    sources = {r.source for r in response.results}
    assert removed.name not in sources
    assert "005_new.txt" in sources
    assert any("Wang urged the two sides" in t for t in after)
    assert not any("Wang called on the two sides" in t for t in after)


def test_network_is_loaded_only_when_a_document_must_be_chunked(fake_engine: Engine, seeds: Path):
    model = fake_engine.model
    fake_engine.refresh()
    assert model.warmed_up == 1  # the first build chunks everything
    next(seeds.glob("000_*.txt")).unlink()
    assert fake_engine.refresh() is not None
    assert model.warmed_up == 1  # a deletion re-uses every other document's chunks
    edited = next(seeds.glob("004_*.txt"))
    edited.write_text(edited.read_text(encoding="utf-8") + "\nA new closing line.\n")
    assert fake_engine.refresh() is not None
    assert model.warmed_up == 2


def test_incremental_index_equals_from_scratch(fake_engine: Engine, seeds: Path, tmp_path: Path):
    fake_engine.refresh()
    path = next(seeds.glob("003_*.txt"))
    path.write_text(path.read_text(encoding="utf-8") + "\nA closing paragraph.\n", encoding="utf-8")
    fake_engine.refresh()
    scratch = Engine(seeds, tmp_path / "scratch", HashingModel())
    scratch.refresh()
    incremental = fake_engine.store.load("test/hashing", 64)
    full = scratch.store.load("test/hashing", 64)
    assert incremental.chunks == full.chunks
    assert incremental.manifest.sources == full.manifest.sources
    n = full.faiss_index.ntotal
    assert np.array_equal(
        incremental.faiss_index.reconstruct_n(0, n), full.faiss_index.reconstruct_n(0, n)
    )


def test_status_reports_staleness(fake_engine: Engine, seeds: Path):
    assert fake_engine.status().manifest is None
    fake_engine.refresh()
    state = fake_engine.status()
    assert state.problem is None and not state.changes
    assert len(state.manifest.sources) == 5
    (seeds / "extra.md").write_text("# Extra\n\nSome words.\n", encoding="utf-8")
    state = fake_engine.status()
    assert state.changes.added == ("extra.md",)


def test_no_refresh_answers_from_old_index_and_flags_it(fake_engine: Engine, seeds: Path):
    fake_engine.refresh()
    (seeds / "005_new.txt").write_text("Title\n\nThe railway opens soon.\n", encoding="utf-8")
    response = fake_engine.search("railway", refresh=False)
    assert response.refreshed is None
    assert response.stale is not None and response.stale.added == ("005_new.txt",)
    assert "005_new.txt" not in {r.source for r in response.results}


def test_missing_index_without_refresh_is_a_typed_error(fake_engine: Engine):
    with pytest.raises(IndexMissingError):
        fake_engine.search("railway", refresh=False)


def test_other_model_is_refused_then_rebuilt(seeds: Path, tmp_path: Path):
    index = tmp_path / "index"
    Engine(seeds, index, HashingModel()).refresh()
    other = Engine(seeds, index, HashingModel(name="test/other", dimension=32))
    with pytest.raises(IndexMismatchError):
        other.search("railway", refresh=False)
    assert other.status().problem.startswith("index was built with test/hashing (64-d)")
    response = other.search("railway")
    assert response.refreshed is not None and "built with test/hashing" in response.refreshed.reason
    assert other.store.read_manifest().dimension == 32


def test_format_version_mismatch_is_refused(fake_engine: Engine):
    fake_engine.refresh()
    rewrite_manifest(fake_engine, lambda data: data.update(format_version=99))
    with pytest.raises(IndexMismatchError, match="format 99"):
        fake_engine.search("railway", refresh=False)
    assert fake_engine.search("railway").refreshed.reason.startswith("index format 99")


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        (store.CHUNKS, lambda p: p.write_text(p.read_text()[:-200])),
        (store.CHUNKS, lambda p: p.write_text("\n".join(p.read_text().splitlines()[:-1]) + "\n")),
        (store.VECTORS, lambda p: p.write_bytes(p.read_bytes()[:100])),
        (store.MANIFEST, lambda p: p.write_text("{not json")),
    ],
)
def test_damaged_index_is_a_typed_error(fake_engine: Engine, name, damage):
    fake_engine.refresh()
    damage(fake_engine.store.root / fake_engine.store.current() / name)
    with pytest.raises(IndexCorruptError):
        fake_engine.search("railway", refresh=False)


def test_failed_build_leaves_last_good_index(fake_engine: Engine, seeds: Path, monkeypatch):
    fake_engine.refresh()
    before = fake_engine.search("railway", refresh=False)
    live = fake_engine.store.current()
    (seeds / "005_new.txt").write_text("Title\n\nThe railway opens soon.\n", encoding="utf-8")

    real_write = store_files.write_file

    def failing_write(path: Path, data: bytes) -> None:
        if path.name == store.CHUNKS:
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(store_files, "write_file", failing_write)
    with pytest.raises(IndexWriteError, match="No space left on device"):
        fake_engine.refresh()
    monkeypatch.undo()
    assert fake_engine.store.current() == live
    assert not [p for p in fake_engine.store.root.iterdir() if p.name.startswith(".tmp-")]
    after = fake_engine.search("railway", refresh=False)
    assert [r.chunk_id for r in after.results] == [r.chunk_id for r in before.results]


def test_old_generations_are_pruned_keeping_the_previous(fake_engine: Engine, seeds: Path):
    for i in range(4):
        (seeds / f"n{i}.txt").write_text(f"Title\n\nParagraph {i}.\n", encoding="utf-8")
        fake_engine.refresh()
    generations = sorted(p.name for p in fake_engine.store.root.glob("gen-*"))
    assert generations == ["gen-000003", "gen-000004"]
    assert fake_engine.store.current() == "gen-000004"


def test_empty_or_missing_corpus_is_a_typed_error(tmp_path: Path):
    with pytest.raises(CorpusError, match="not found"):
        Engine(tmp_path / "nope", tmp_path / "index", HashingModel()).search("x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match=r"no documents in"):
        Engine(tmp_path / "empty", tmp_path / "index", HashingModel()).search("x")


def test_k_larger_than_index_returns_every_chunk_once(fake_engine: Engine):
    response = fake_engine.search("railway", k=1000)  # more than the 247 chunks
    cited = [(r.source, r.lines) for r in response.results]
    cited += [(c.source, c.lines) for r in response.results for c in r.also_in]
    assert len(cited) == response.refreshed.chunks  # each passage once, as a result or a copy
    assert len({r.chunk_id for r in response.results}) == len(response.results)
    assert [r.rank for r in response.results] == list(range(1, len(response.results) + 1))


def test_faiss_minus_one_labels_never_become_chunks():
    """An IVF index probing one list returns label -1 for the slots it cannot fill."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 8)).astype(np.float32)
    quantizer = faiss.IndexFlatIP(8)
    index = faiss.IndexIVFFlat(quantizer, 8, 8, faiss.METRIC_INNER_PRODUCT)
    index.train(vectors)
    index.add(vectors)
    index.nprobe = 1
    _, raw = index.search(vectors[:1], 200)
    assert (raw == -1).any()  # the case exists
    rows = nearest(index, vectors[0], 200)
    assert rows and all(0 <= row < 200 for row, _ in rows)
    assert len(rows) == int((raw >= 0).sum())


def test_store_counts_are_checked(tmp_path: Path, fake_engine: Engine):
    fake_engine.refresh()
    rewrite_manifest(fake_engine, lambda data: data.update(chunks=data["chunks"] + 1))
    with pytest.raises(IndexCorruptError, match="disagrees"):
        IndexStore(fake_engine.store.root).load("test/hashing", 64)


def test_unreadable_manifest_is_refused_until_an_explicit_rebuild(fake_engine: Engine):
    fake_engine.refresh()
    damaged = fake_engine.store.current()
    (fake_engine.store.root / damaged / store.MANIFEST).write_text("{not json")
    with pytest.raises(IndexCorruptError):
        fake_engine.search("railway")  # not silently rebuilt over
    assert "checksum mismatch" in fake_engine.status().problem
    report = fake_engine.refresh(rebuild=True)
    assert report is not None and report.embedded == 0  # vectors came from the cache
    kept = list(fake_engine.store.root.glob(f"damaged-{damaged}-*"))
    assert len(kept) == 1 and (kept[0] / store.MANIFEST).read_text() == "{not json"
    assert any("kept as damaged-" in n for n in fake_engine.store.notices)
    assert fake_engine.search("railway").results


def test_a_disk_full_to_the_last_byte_fails_at_the_lock_note_in_one_line(
    fake_engine: Engine, seeds: Path, monkeypatch
):
    """With 100 KB free the build fails where it writes its files (exit 7); with none, it
    fails earlier, writing who holds the lock: the same typed error, the index intact."""
    fake_engine.refresh()
    before = fake_engine.store.current()
    (seeds / "new.txt").write_text("A new document about the railway.\n", encoding="utf-8")
    real_write_text = Path.write_text

    def full(self: Path, *args, **kwargs):
        if self.name == store.LOCK_OWNER:
            raise OSError(28, "No space left on device", str(self))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(IndexWriteError, match="No space left on device"):
        fake_engine.refresh()
    monkeypatch.setattr(Path, "write_text", real_write_text)
    assert fake_engine.store.current() == before
    assert fake_engine.store.verify()[0] == []
    assert fake_engine.refresh() is not None  # space is back: the build goes through


def test_index_folders_follow_the_umask(fake_engine: Engine, tmp_path: Path):
    """A generation is renamed into place from a temporary folder, which Python creates
    0700: another user of a shared index could not read it, and would call it damaged."""
    from diplosearch.store.folders import staging_folder

    old = os.umask(0o002)  # a team's shared folder: group-writable
    try:
        fake_engine.refresh()
        staged = staging_folder(".x-", tmp_path)
    finally:
        os.umask(old)
    generation = fake_engine.store.root / fake_engine.store.current()
    assert generation.stat().st_mode & 0o777 == 0o775
    assert staged.stat().st_mode & 0o777 == 0o775
    assert all(path.stat().st_mode & 0o777 in (0o664, 0o775) for path in generation.rglob("*"))


def test_damaged_vectors_in_the_cache_are_a_miss_not_an_index(fake_engine: Engine):
    """NaN or non-unit vectors in the embedding cache: a rebuild embeds those texts again
    instead of committing the damage (before, --rebuild committed NaN vectors, exit 0)."""
    import sqlite3

    fake_engine.refresh()
    with sqlite3.connect(fake_engine.store.cache_path) as db:
        rows = db.execute("SELECT model, text_sha256, vector FROM vectors").fetchall()
        for i, (model, key, blob) in enumerate(rows[:20]):
            vectors = np.frombuffer(blob, dtype=np.float32).copy()
            vectors[:] = np.nan if i % 2 else 3.0
            db.execute(
                "UPDATE vectors SET vector = ? WHERE model = ? AND text_sha256 = ?",
                (vectors.tobytes(), model, key),
            )
    report = fake_engine.refresh(rebuild=True)
    assert report is not None and report.embedded >= 20
    loaded = fake_engine.store.load("test/hashing", 64)
    stored = loaded.faiss_index.reconstruct_n(0, loaded.faiss_index.ntotal)
    assert np.isfinite(stored).all()
    assert np.allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-3)
    assert fake_engine.store.verify()[0] == []


def test_vectors_swapped_between_cache_entries_are_caught(fake_engine: Engine):
    """Valid unit vectors moved to other entries (before: 129 of 196 vectors of a rebuild
    sat on the wrong paragraphs, and verify said sound): each entry's checksum covers its
    key, so every swapped entry is a miss and the rebuild equals a fresh build."""
    import sqlite3

    fake_engine.refresh()
    fresh = fake_engine.store.load("test/hashing", 64)
    expected = fresh.faiss_index.reconstruct_n(0, fresh.faiss_index.ntotal)
    with sqlite3.connect(fake_engine.store.cache_path) as db:
        rows = db.execute("SELECT text_sha256, vector, checksum FROM vectors").fetchall()
        keys = [key for key, _, _ in rows]
        shuffled = keys[1:] + keys[:1]
        db.execute("DELETE FROM vectors")
        db.executemany(
            "INSERT INTO vectors VALUES ('test/hashing', ?, ?, ?)",
            [
                (key, blob, checksum)
                for key, (_, blob, checksum) in zip(shuffled, rows, strict=True)
            ],
        )
    report = fake_engine.refresh(rebuild=True)
    assert report is not None and report.embedded == len(set(keys))
    loaded = fake_engine.store.load("test/hashing", 64)
    assert np.array_equal(loaded.faiss_index.reconstruct_n(0, loaded.faiss_index.ntotal), expected)


@pytest.mark.parametrize("damage", ["header", "middle", "not-a-file"])
def test_a_damaged_cache_file_is_a_miss_not_a_failed_build(fake_engine: Engine, damage: str):
    """A cache SQLite cannot read (a flipped header, a damaged page, a folder in its place
    is not ours to remove and stays an error): before, every refresh, even --rebuild,
    failed with "could not write", exit 7, forever."""
    fake_engine.refresh()
    path = fake_engine.store.cache_path
    if damage == "header":
        data = bytearray(path.read_bytes())
        data[:16] = b"not a database!!"
        path.write_bytes(bytes(data))
    elif damage == "middle":
        data = bytearray(path.read_bytes())
        for i in range(4096, len(data), 4096):  # every page after the first
            data[i + 8 : i + 200] = bytes(192)
        path.write_bytes(bytes(data))
    else:
        path.unlink()
        path.mkdir()
    if damage == "not-a-file":
        with pytest.raises(IndexWriteError):
            fake_engine.refresh(rebuild=True)
        return
    report = fake_engine.refresh(rebuild=True)
    assert report is not None and report.embedded > 0
    assert any("embedding cache" in notice for notice in fake_engine.notices)
    assert fake_engine.store.verify()[0] == []
    again = fake_engine.refresh(rebuild=True)  # the new cache works
    assert again is not None and again.embedded == 0


def test_cache_damage_met_while_storing_is_a_fresh_cache(tmp_path: Path):
    """A damaged page that only a write reaches: before, every build failed with exit 7."""
    from diplosearch.store.cache import EmbeddingCache

    path = tmp_path / "cache.sqlite"
    vectors = np.random.default_rng(0).normal(size=(3000, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with EmbeddingCache(path, "m", 8) as cache:
        cache.put_many((f"{i:064x}", vectors[i : i + 1]) for i in range(3000))
    data = bytearray(path.read_bytes())
    data[-4096:] = bytes(4096)  # the last leaf, where the new key goes: only a write reads it
    path.write_bytes(bytes(data))
    with EmbeddingCache(path, "m", 8) as cache:
        cache.put_many([("f" * 64, vectors[:1])])
        assert list(cache.get_many(["f" * 64])) == ["f" * 64]
        assert any("embedding cache" in notice for notice in cache.notices)


def test_an_encoder_no_manifest_vouches_for_is_exported_afresh(fake_engine: Engine):
    """Encoder files left from an index whose manifests are gone (an older format, a lost
    CURRENT) are not taken on trust; hidden files beside them are never listed (a
    manifest listing `.DS_Store` would be refused by its own reader)."""
    fake_engine.refresh()
    root = fake_engine.store.root
    folder = next(root.glob("encoders/*"))
    (folder / "encoder.json").write_text('{"damaged": true}')
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    for path in [root / "CURRENT", *root.glob("gen-*")]:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert fake_engine.refresh() is not None
    assert (folder / "encoder.json").read_text() == "{}"
    assert ".DS_Store" not in fake_engine.store.read_manifest().encoder_files
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # a file browser comes back
    assert fake_engine.store.verify()[0] == []
    assert fake_engine.refresh() is None
    assert fake_engine.search("railway", 3).results


def test_a_permission_error_while_repairing_the_pointer_moves_nothing(
    fake_engine: Engine, monkeypatch
):
    """Repair looks for intact generations before setting CURRENT aside: one this user may
    not read stops it with the permission error, CURRENT where it was (before: CURRENT
    was set aside first, and the index left with none)."""
    from diplosearch.errors import AccessError
    from diplosearch.store.reader import IndexReader

    fake_engine.refresh()
    root = fake_engine.store.root
    (root / "CURRENT").write_text("damaged\n")

    def denied(self, name, sha, **kwargs):
        raise AccessError(f"no permission to read {root / name}")

    monkeypatch.setattr(IndexReader, "load_generation", denied)
    with pytest.raises(AccessError):
        fake_engine.refresh(heal=True)
    assert (root / "CURRENT").read_text() == "damaged\n"
    assert not list(root.glob("damaged-*"))


def test_a_query_of_more_words_than_the_coverage_measure_tells_apart(fake_engine: Engine):
    """The coverage measure tells apart the first 22 terms of a query in one search; a
    longer question (a pasted sentence, a Russian one whose words also count as stems)
    once raised KeyError in the hybrid ranking."""
    words = (
        "railway China Kyrgyzstan Uzbekistan construction project feasibility study "
        "connectivity corridor investment trade customs clearance enterprises agriculture "
        "energy vehicles commerce cooperation security pandemic economy friendship summit"
    )
    assert len(words.split()) > 22
    response = fake_engine.search(words, k=3)
    assert response.results
