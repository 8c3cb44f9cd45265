"""Never lose or corrupt the index, never crash on bad input.

Crashes at random moments and at every commit step, damaged files, a full disk, random
corpus histories against from-scratch builds, concurrent readers during rebuilds, and a
planted pickle payload. All with the small counting model: the model is not the point.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from diplosearch import lexical, store
from diplosearch.engine import Engine
from diplosearch.errors import (
    DiplosearchError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexWriteError,
)
from diplosearch.store import IndexStore
from diplosearch.store import files as store_files
from diplosearch.store import records as store_records
from diplosearch.store.cache import EmbeddingCache
from tests.conftest import REPO, SEEDS
from tests.fakes import HashingModel

QUERIES = ["railway", "one-China principle", "vaccine assistance", "Luban Workshop", "Belarus"]
NEW_DOC = "Railway news\n\nThe ministers said the China-Kyrgyzstan-Uzbekistan railway opens.\n"


def answers(engine: Engine) -> list[list[tuple[str, int, str]]]:
    """What an index says to fixed queries: (source, line, chunk id) of each result."""
    return [
        [(r.source, r.lines[0], r.chunk_id) for r in engine.search(q, 5, refresh=False).results]
        for q in QUERIES
    ]


def change_corpus(seeds: Path) -> None:
    (seeds / "005_new.txt").write_text(NEW_DOC, encoding="utf-8")
    path = next(seeds.glob("004_*.txt"))
    path.write_text(path.read_text(encoding="utf-8").replace("Wang called", "Wang urged"), "utf-8")


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """An index of the seeds (old) and answers of old and changed corpora from scratch."""
    root = tmp_path_factory.mktemp("histories")
    old_seeds, new_seeds = root / "old", root / "new"
    shutil.copytree(SEEDS, old_seeds)
    shutil.copytree(SEEDS, new_seeds)
    change_corpus(new_seeds)
    old = Engine(old_seeds, root / "old-index", HashingModel())
    old.refresh()
    new = Engine(new_seeds, root / "new-index", HashingModel())
    new.refresh()
    return {
        "old_index": root / "old-index",
        "old": answers(old),
        "new": answers(new),
        "new_chunks": new.store.load("test/hashing", 64).chunks,
    }


def fresh_copy(histories, tmp_path: Path) -> tuple[Path, Path]:
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    shutil.copytree(SEEDS, seeds)
    shutil.copytree(histories["old_index"], index)
    change_corpus(seeds)
    return seeds, index


BUILD_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from diplosearch.engine import Engine
from tests.fakes import HashingModel
engine = Engine(Path({seeds!r}), Path({index!r}), HashingModel())
print("start", flush=True)  # imports done: the build begins
engine.refresh()
"""


def build_process(seeds: Path, index: Path, crash_at: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != store.CRASH_ENV}
    if crash_at:
        env[store.CRASH_ENV] = crash_at
    code = BUILD_SCRIPT.format(repo=str(REPO), seeds=str(seeds), index=str(index))
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def assert_recovers(histories, seeds: Path, index: Path) -> None:
    """After a crash: the old or the new generation answers, verify passes, and a rerun
    completes and equals a from-scratch build."""
    engine = Engine(seeds, index, HashingModel())
    assert answers(engine) in (histories["old"], histories["new"]), "mixed generations"
    problems, _ = IndexStore(index).verify()
    assert problems == []
    engine.refresh()
    assert answers(engine) == histories["new"]
    assert engine.store.load("test/hashing", 64).chunks == histories["new_chunks"]
    assert IndexStore(index).verify()[0] == []


@pytest.mark.parametrize("step", store.COMMIT_STEPS)
def test_kill_at_each_commit_step(histories, tmp_path: Path, step: str):
    seeds, index = fresh_copy(histories, tmp_path)
    process = build_process(seeds, index, crash_at=step)
    assert process.wait(timeout=120) == -signal.SIGKILL
    assert_recovers(histories, seeds, index)


def test_kill_at_random_moments(histories, tmp_path: Path):
    """Moments drawn over the build itself (after the interpreter's start-up)."""
    seeds, index = fresh_copy(histories, tmp_path / "timing")
    process = build_process(seeds, index)
    assert process.stdout.readline() == b"start\n"
    start = time.perf_counter()
    assert process.wait(timeout=120) == 0
    duration = time.perf_counter() - start
    rng = random.Random(20261124)
    outcomes = {"killed": 0, "finished": 0}
    case = 0
    # A moment may fall after the build ended; go on until 20 builds died mid-way.
    while outcomes["killed"] < 20 and case < 80:
        seeds, index = fresh_copy(histories, tmp_path / f"case{case}")
        process = build_process(seeds, index)
        assert process.stdout.readline() == b"start\n"
        time.sleep(rng.uniform(0.0, duration))
        process.send_signal(signal.SIGKILL)
        code = process.wait(timeout=120)
        outcomes["killed" if code == -signal.SIGKILL else "finished"] += 1
        assert_recovers(histories, seeds, index)
        case += 1
    print("random kills:", outcomes)
    assert outcomes["killed"] >= 20, outcomes


# -- damage ------------------------------------------------------------------------------


def damaged_cases() -> list[tuple[str, str, int]]:
    """(file, kind, parameter): truncations at several lengths and single-byte flips."""
    rng = random.Random(7)
    lexical_files = [
        f"{store.LEXICAL}/meta.json",
        f"{store.LEXICAL}/*.term",
        f"{store.LEXICAL}/*.idx",
    ]
    files = [*store.DATA_FILES, *lexical_files, store.MANIFEST, store.CURRENT]
    cases = []
    for name in files:
        cases += [(name, "truncate", fraction) for fraction in (0, 1, 50, 99)]
        cases += [(name, "flip", rng.randrange(1 << 30)) for _ in range(14)]
    return cases


@pytest.fixture(scope="module")
def two_generations(histories, tmp_path_factory: pytest.TempPathFactory):
    """An index with a live generation (changed corpus) and its previous one (old)."""
    root = tmp_path_factory.mktemp("two")
    seeds = root / "seeds"
    shutil.copytree(SEEDS, seeds)
    shutil.copytree(histories["old_index"], root / "index")
    change_corpus(seeds)
    Engine(seeds, root / "index", HashingModel()).refresh()
    return seeds, root / "index"


def damage(path: Path, kind: str, parameter: int) -> None:
    """Damage ``path`` (a glob pattern for Tantivy's segment files: every match)."""
    if "*" in path.name:
        for match in sorted(path.parent.glob(path.name)):
            damage(match, kind, parameter)
        return
    data = bytearray(path.read_bytes())
    if kind == "truncate":
        keep = {0: 0, 1: 1, 50: len(data) // 2, 99: len(data) - 1}[parameter]
        path.write_bytes(bytes(data[:keep]))
    else:
        offset = parameter % len(data)
        data[offset] ^= 1 << (parameter % 8)
        path.write_bytes(bytes(data))


def test_every_truncation_and_byte_flip_is_detected(histories, two_generations, tmp_path: Path):
    seeds, pristine = two_generations
    live = IndexStore(pristine).current()
    cases = damaged_cases()
    assert len(cases) >= 100
    tally = {"error": 0, "fallback": 0, "previous-damaged": 0}
    for i, (name, kind, parameter) in enumerate(cases):
        index = tmp_path / f"case{i}"
        shutil.copytree(pristine, index)
        damage(index / name if name == store.CURRENT else index / live / name, kind, parameter)
        engine = Engine(seeds, index, HashingModel())
        try:
            result = answers(engine)
        except DiplosearchError as exc:  # refused, with our typed error: never a crash
            assert isinstance(exc, IndexCorruptError | IndexMismatchError), exc
            tally["error"] += 1
        else:
            # Answered from the previous generation, never from damaged data, and said so.
            assert result == histories["old"], (name, kind, parameter)
            assert engine.notices and "previous generation" in engine.notices[0]
            tally["fallback"] += 1
        problems, _ = IndexStore(index).verify()
        assert problems, (name, kind, parameter)  # verify finds it too
    # Damage to the previous generation is invisible to queries but not to verify.
    for i, name in enumerate([*store.DATA_FILES, f"{store.LEXICAL}/*.term"]):
        index = tmp_path / f"prev{i}"
        shutil.copytree(pristine, index)
        previous = IndexStore(index).pointer().previous[0]
        damage(index / previous / name, "flip", 12345 + i)
        assert answers(Engine(seeds, index, HashingModel())) == histories["new"]
        assert any(previous in p for p in IndexStore(index).verify()[0])
        tally["previous-damaged"] += 1
    print("damage cases:", len(cases), tally)
    assert tally["fallback"] > 0 and tally["error"] > 0, tally


def damaged_live(two_generations, tmp_path: Path, name: str) -> tuple[Engine, Path, str]:
    """A copy of the two-generation index whose live ``name`` file has one flipped bit."""
    seeds, pristine = two_generations
    index = tmp_path / "index"
    shutil.copytree(pristine, index)
    live = IndexStore(index).current()
    damage(index / live / name, "flip", 999)
    return Engine(seeds, index, HashingModel()), index, live


def test_damaged_live_generation_is_set_aside_and_rebuilt_by_index(two_generations, tmp_path):
    engine, index, live = damaged_live(two_generations, tmp_path, store.VECTORS)
    report = engine.refresh(heal=True)
    assert report is not None and "damaged" in report.reason
    kept = list(index.glob(f"damaged-{live}-*"))
    assert len(kept) == 1 and (kept[0] / store.VECTORS).exists()
    assert IndexStore(index).verify()[0] == [f"damaged generation set aside: {kept[0].name} "
                                             "(inspect or delete it)"]  # fmt: skip


# -- disk full ---------------------------------------------------------------------------


def count_writes(histories, tmp_path: Path) -> int:
    seeds, index = fresh_copy(histories, tmp_path / "count")
    calls = {"n": 0}
    real = store_files.write_file

    def counting(path: Path, data: bytes) -> None:
        calls["n"] += 1
        real(path, data)

    original, store_files.write_file = store_files.write_file, counting
    try:
        Engine(seeds, index, HashingModel()).refresh()
    finally:
        store_files.write_file = original
    return calls["n"]


def test_disk_full_at_every_write_keeps_the_previous_generation(histories, tmp_path, monkeypatch):
    writes = count_writes(histories, tmp_path)
    print("write points:", writes, "+ lexical + cache")
    assert writes >= 5  # vectors, sentences, chunks, manifest, pointer
    failures = [("file", n) for n in range(writes)] + [("lexical", 0), ("cache", 0)]
    for kind, n in failures:
        seeds, index = fresh_copy(histories, tmp_path / f"{kind}{n}")
        before = IndexStore(index).pointer()
        calls = {"n": 0}
        real_write, real_lexical, real_put = (
            store_files.write_file,
            lexical.write,
            EmbeddingCache.put_many,
        )

        def full_disk(path: Path, data: bytes, n=n, calls=calls, real_write=real_write) -> None:
            if calls["n"] == n:
                path.write_bytes(data[: len(data) // 2])  # a short file, as a full disk leaves
                raise OSError(errno.ENOSPC, "No space left on device")
            calls["n"] += 1
            real_write(path, data)

        def full_sqlite(*args, **kwargs):
            raise sqlite3.OperationalError("database or disk is full")

        def full_lexical(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        if kind == "file":
            monkeypatch.setattr(store_files, "write_file", full_disk)
        elif kind == "lexical":
            monkeypatch.setattr(lexical, "write", full_lexical)
        else:
            monkeypatch.setattr(EmbeddingCache, "put_many", full_sqlite)
        engine = Engine(seeds, index, HashingModel())
        with pytest.raises(IndexWriteError, match="previous index is unchanged"):
            engine.refresh()
        monkeypatch.setattr(store_files, "write_file", real_write)
        monkeypatch.setattr(lexical, "write", real_lexical)
        monkeypatch.setattr(EmbeddingCache, "put_many", real_put)
        assert IndexStore(index).pointer() == before, (kind, n)
        assert answers(Engine(seeds, index, HashingModel())) == histories["old"], (kind, n)
        assert IndexStore(index).verify()[0] == [], (kind, n)
        engine.refresh()  # space is back: the build completes
        assert answers(engine) == histories["new"]


# -- random histories --------------------------------------------------------------------


def test_200_random_steps_incremental_equals_from_scratch(tmp_path: Path):
    rng = random.Random(42)
    paragraphs = [
        p.strip()
        for path in sorted(SEEDS.glob("*.txt"))
        for p in path.read_text(encoding="utf-8").split("\n")
        if len(p.split()) > 8
    ]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    incremental = Engine(corpus, tmp_path / "incremental", HashingModel())
    scratch = Engine(corpus, tmp_path / "scratch", HashingModel())

    def new_text() -> str:
        body = rng.sample(paragraphs, rng.randint(1, 5))
        return f"Title {rng.randint(0, 99)}\n\n" + "\n\n".join(body) + "\n"

    for i in range(3):
        (corpus / f"doc{i}.txt").write_text(new_text(), encoding="utf-8")
    counter = 3
    for step in range(200):
        files = sorted(corpus.rglob("*.txt"))
        op = rng.choice(["add", "edit", "edit", "rename", "delete"] if len(files) > 1 else ["add"])
        if op == "add":
            (corpus / f"doc{counter}.txt").write_text(new_text(), encoding="utf-8")
            counter += 1
        elif op == "edit":
            path = rng.choice(files)
            blocks = path.read_text(encoding="utf-8").split("\n\n")
            where = rng.randrange(1, len(blocks) + 1)
            if rng.random() < 0.5 and len(blocks) > 2:
                del blocks[min(where, len(blocks) - 1)]
            else:
                blocks.insert(where, rng.choice(paragraphs))
            path.write_text("\n\n".join(blocks), encoding="utf-8")
        elif op == "rename":
            path = rng.choice(files)
            path.rename(corpus / f"doc{counter}.txt")
            counter += 1
        else:
            rng.choice(files).unlink()
        incremental.refresh()
        scratch.refresh(rebuild=True)
        a = incremental.store.load("test/hashing", 64)
        b = scratch.store.load("test/hashing", 64)
        assert a.chunks == b.chunks, (step, op)
        assert a.manifest.sources == b.manifest.sources, (step, op)
        if step % 20 == 0:
            assert answers(incremental) == answers(scratch), (step, op)
            n = a.faiss_index.ntotal
            assert np.array_equal(
                a.faiss_index.reconstruct_n(0, n), b.faiss_index.reconstruct_n(0, n)
            )


# -- concurrency -------------------------------------------------------------------------

READER_SCRIPT = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from diplosearch.engine import Engine
from tests.fakes import HashingModel
engine = Engine(Path({seeds!r}), Path({index!r}), HashingModel())
seen, errors = [], []
deadline = time.time() + {seconds}
while time.time() < deadline:
    try:
        r = engine.search("railway", 5, refresh=False).results
        seen.append([[x.source, x.lines[0], x.chunk_id] for x in r])
    except Exception as exc:
        errors.append(repr(exc))
print(json.dumps({{"seen": seen, "errors": errors}}))
"""


def test_concurrent_queries_during_rebuilds(histories, tmp_path: Path):
    seeds, index = fresh_copy(histories, tmp_path)
    shutil.rmtree(index)
    new_doc = seeds / "005_new.txt"
    writer = Engine(seeds, index, HashingModel())
    writer.refresh()
    expected = set()
    for state in range(2):
        new_doc.write_text(NEW_DOC if state else "Other\n\nNothing about trains here.\n", "utf-8")
        writer.refresh()
        results = writer.search("railway", 5, refresh=False).results
        expected.add(json.dumps([[r.source, r.lines[0], r.chunk_id] for r in results]))
    code = READER_SCRIPT.format(repo=str(REPO), seeds=str(seeds), index=str(index), seconds=8)
    readers = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    time.sleep(1.5)  # let the readers start answering
    for rebuild in range(10):
        new_doc.write_text(
            NEW_DOC if rebuild % 2 else "Other\n\nNothing about trains here.\n", "utf-8"
        )
        assert writer.refresh(rebuild=True) is not None
    outputs = [json.loads(reader.communicate(timeout=120)[0]) for reader in readers]
    assert all(out["errors"] == [] for out in outputs), [o["errors"][:3] for o in outputs]
    answered = [json.dumps(answer) for out in outputs for answer in out["seen"]]
    print("concurrent answers:", len(answered), "distinct:", len(set(answered)))
    assert len(answered) >= 40
    assert set(answered) <= expected


def test_second_writer_is_told_who_holds_the_lock_and_queries_still_answer(histories, tmp_path):
    seeds, index = fresh_copy(histories, tmp_path)
    holder = Engine(seeds, index, HashingModel())
    with holder.store.writer_lock():
        other = Engine(seeds, index, HashingModel())
        with pytest.raises(IndexLockedError, match=rf"process {os.getpid()} on "):
            other.refresh(wait=0)
        response = other.search("railway", 5)  # corpus changed, but the writer is busy
        assert response.refreshed is None
        assert any("being written by process" in w for w in response.warnings)
        assert [r.chunk_id for r in response.results] == [c for _, _, c in histories["old"][0]]


# -- no pickle ---------------------------------------------------------------------------


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_planted_pickle_payload_never_executes(histories, tmp_path: Path):
    seeds, index = fresh_copy(histories, tmp_path)
    marker = tmp_path / "pwned"
    live = IndexStore(index).current()
    payload = pickle.dumps(_Payload(marker))
    folder = index / live
    # A pickled object array where the sentence vectors belong, and pickle bytes in the
    # chunk table, each with checksums recomputed so that only the format can refuse them.
    buffer = tmp_path / "obj.npy"
    np.save(buffer, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    for name, data in ((store.SENTENCES, buffer.read_bytes()), (store.CHUNKS, payload)):
        case = tmp_path / f"case-{name}"
        shutil.copytree(index, case)
        (case / live / name).write_bytes(data)
        manifest = json.loads((case / live / store.MANIFEST).read_text())
        manifest["files"][name] = {"sha256": store_records._sha256(data), "size": len(data)}
        text = json.dumps(manifest).encode()
        (case / live / store.MANIFEST).write_bytes(text)
        pointer = store.Pointer(live=(live, store_records._sha256(text)), previous=None)
        (case / store.CURRENT).write_text(pointer.to_text())
        with pytest.raises(IndexCorruptError):
            Engine(seeds, case, HashingModel()).search("railway", refresh=False)
        assert not marker.exists()
    assert not marker.exists() and folder.exists()


def test_generation_numbers_only_grow_past_set_aside_ones(two_generations, tmp_path):
    engine, _, live = damaged_live(two_generations, tmp_path, store.CHUNKS)
    engine.refresh(heal=True)
    assert store_files.number(engine.store.current()) == store_files.number(live) + 1


REFRESHING_SCRIPT = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from diplosearch.engine import Engine
from tests.fakes import HashingModel
seeds, index = Path({seeds!r}), Path({index!r})
searches = refreshed = 0
deadline = time.time() + {seconds}
while time.time() < deadline:
    (seeds / "load-{n}.txt").write_text(f"Railway talks, round {{searches}}.\\n", "utf-8")
    response = Engine(seeds, index, HashingModel()).search("railway", 3)
    searches += 1
    refreshed += response.refreshed is not None
print(json.dumps({{"searches": searches, "refreshed": refreshed}}))
"""


def test_an_explicit_index_gets_the_lock_under_a_load_of_refreshing_searches(
    histories, tmp_path: Path
):
    """Three processes edit the corpus and search in a loop, so every search refreshes
    (takes the writer lock and builds). An explicit build waits for the lock and gets it
    (before: with searches taking the lock back between polls, 122 explicit builds of 123
    failed in a minute); searches meanwhile answer from the live generation."""
    seeds, index = fresh_copy(histories, tmp_path)
    Engine(seeds, index, HashingModel()).refresh()
    scripts = [
        REFRESHING_SCRIPT.format(
            repo=str(REPO), seeds=str(seeds), index=str(index), seconds=10, n=n
        )
        for n in range(3)
    ]
    load = [
        subprocess.Popen([sys.executable, "-c", s], stdout=subprocess.PIPE, text=True)
        for s in scripts
    ]
    time.sleep(3)  # the searches are refreshing
    waits, overtaken = [], []
    for _ in range(3):
        seen: list[str | None] = []

        def waiting(owner: str, seen: list[str | None] = seen) -> None:
            seen.append(IndexStore(index).current())  # the live generation when we queued

        report = Engine(seeds, index, HashingModel()).refresh(wait=60, waiting=waiting)
        waits.append(report.waited if report is not None else 0.0)
        if seen and seen[0] is not None and report is not None:
            # Generations committed by others between our queueing and our commit: at
            # most the build that held the lock when we queued.
            overtaken.append(
                store_files.number(report.generation) - store_files.number(seen[0]) - 1
            )
    outputs = [json.loads(p.communicate(timeout=120)[0]) for p in load]
    print("explicit builds waited", [f"{w:.2f} s" for w in waits], "overtaken by", overtaken)
    print("load", outputs)
    assert all(out["searches"] > 0 and out["refreshed"] > 0 for out in outputs)
    assert all(n <= 1 for n in overtaken), overtaken
    assert Engine(seeds, index, HashingModel()).store.verify()[0] == []
