"""On-disk index: generations of (FAISS vectors, chunk table, manifest), switched atomically.

Layout of the index folder::

    CURRENT                 name of the live generation (replaced atomically)
    gen-000007/
        manifest.json       format, model, dimension, chunker, per-source hashes, counts
        chunks.jsonl        line i describes row i of the FAISS index
        vectors.faiss       FAISS IndexFlatIP over L2-normalised vectors (cosine)
        lexical.sqlite      SQLite FTS5 (BM25) over the same rows
        sentences.npy       vectors of the sentences of multi-sentence chunks, in row order
    embeddings.sqlite       embedding cache (see cache.py)
    encoders/<model>/       ONNX query encoder (see encoder.py)
    .lock                   held by the one process writing

A build writes a whole new generation in a temporary folder, flushes it to disk, renames
it into place and only then points ``CURRENT`` at it; the previous generation stays, so a
reader that opened it a moment earlier still finishes. Nothing is ever written in place.
JSON and FAISS's own format only, never pickle, so loading an index runs no code.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diplosearch.chunks import Chunk
from diplosearch.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
)

FORMAT_VERSION = 2
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.faiss"
SENTENCES = "sentences.npy"
CACHE = "embeddings.sqlite"
ENCODERS = "encoders"
LOCK = ".lock"
_GENERATION_RE = re.compile(r"^gen-(\d{6,})$")


@dataclass(frozen=True)
class SourceEntry:
    """What the manifest remembers of one document."""

    sha256: str
    size: int
    title: str | None
    date: str | None
    chunks: int


@dataclass(frozen=True)
class Manifest:
    model: str
    model_fingerprint: str
    dimension: int
    chunker_version: str
    encoder: str
    created: str
    sources: dict[str, SourceEntry]
    chunks: int
    #: Every speaker spelling in the chunk table -> the one name used for that person.
    speakers: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    generation: str = field(default="", compare=False)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("generation")
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, generation: str) -> Manifest:
        """Parse and type-check; anything malformed is an :class:`IndexCorruptError`."""
        try:
            data = json.loads(text)
            version = data["format_version"]
            if version != FORMAT_VERSION:
                raise IndexMismatchError(
                    f"index format {version} is not the supported format {FORMAT_VERSION}"
                )
            sources = {
                str(name): SourceEntry(
                    sha256=str(entry["sha256"]),
                    size=int(entry["size"]),
                    title=entry["title"],
                    date=entry["date"],
                    chunks=int(entry["chunks"]),
                )
                for name, entry in data["sources"].items()
            }
            return cls(
                model=str(data["model"]),
                model_fingerprint=str(data["model_fingerprint"]),
                dimension=int(data["dimension"]),
                chunker_version=str(data["chunker_version"]),
                encoder=str(data["encoder"]),
                created=str(data["created"]),
                sources=sources,
                chunks=int(data["chunks"]),
                speakers={str(k): str(v) for k, v in data["speakers"].items()},
                format_version=int(version),
                generation=generation,
            )
        except IndexMismatchError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IndexCorruptError(f"unreadable manifest in {generation}: {exc!r}") from exc


def chunk_to_row(chunk: Chunk) -> dict[str, Any]:
    return {
        "id": chunk.id,
        "source": chunk.source,
        "paragraph": chunk.paragraph,
        "part": chunk.part,
        "parts": chunk.parts,
        "lines": [chunk.line_start, chunk.line_end],
        "section": chunk.section,
        "date": chunk.date,
        "speakers": list(chunk.speakers),
        "sentences": [list(span) for span in chunk.sentences],
        "text": chunk.text,
    }


def row_to_chunk(row: dict[str, Any]) -> Chunk:
    start, end = row["lines"]
    return Chunk(
        source=row["source"],
        paragraph=int(row["paragraph"]),
        part=int(row["part"]),
        parts=int(row["parts"]),
        line_start=int(start),
        line_end=int(end),
        section=row["section"],
        date=row["date"],
        text=row["text"],
        speakers=tuple(row["speakers"]),
        sentences=tuple((int(a), int(b)) for a, b in row["sentences"]),
    )


@dataclass
class LoadedIndex:
    manifest: Manifest
    chunks: list[Chunk]
    faiss_index: Any
    folder: Path
    #: Sentence vectors; chunk i's are rows ``sentence_start[i]`` on (see Chunk.sentence_texts).
    sentence_vectors: np.ndarray
    sentence_start: list[int]

    def sentence_vectors_of(self, row: int) -> np.ndarray:
        count = len(self.chunks[row].sentence_texts)
        start = self.sentence_start[row]
        return self.sentence_vectors[start : start + count]

    def lexical(self) -> Any:
        """The BM25 index of this generation, checked against the chunk count."""
        from diplosearch.lexical import FILE, LexicalIndex

        path = self.folder / FILE
        try:
            index = LexicalIndex(path)
            count = index.count()
        except (OSError, sqlite3.Error) as exc:
            raise IndexCorruptError(f"unreadable lexical index {path}: {exc}") from exc
        if count != len(self.chunks):
            index.close()
            raise IndexCorruptError(
                f"lexical index {path} has {count} rows, the chunk table {len(self.chunks)}"
            )
        return index


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class IndexStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def cache_path(self) -> Path:
        return self.root / CACHE

    def encoder_dir(self, key: str) -> Path:
        return self.root / ENCODERS / key

    @contextlib.contextmanager
    def writer_lock(self, timeout: float = 600) -> Iterator[None]:
        """One writer at a time; an OS lock, released if the process dies."""
        from filelock import FileLock, Timeout

        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / LOCK))
        try:
            lock.acquire(timeout=timeout)
        except Timeout as exc:
            raise IndexLockedError(
                f"another process has been writing {self.root} for over {timeout:.0f} s"
            ) from exc
        try:
            yield
        finally:
            lock.release()

    def current(self) -> str | None:
        try:
            name = (self.root / CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexCorruptError(f"cannot read {self.root / CURRENT}: {exc.strerror}") from exc
        if not _GENERATION_RE.match(name):
            raise IndexCorruptError(f"{self.root / CURRENT} does not name a generation")
        return name

    def read_manifest(self) -> Manifest:
        name = self._require_current()
        path = self.root / name / MANIFEST
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise IndexCorruptError(f"cannot read {path}: {exc.strerror}") from exc
        return Manifest.from_json(text, name)

    def _require_current(self) -> str:
        name = self.current()
        if name is None:
            raise IndexMissingError(f"no index in {self.root}; run `diplosearch index`")
        return name

    def read_chunks(self, manifest: Manifest) -> list[Chunk]:
        """The chunk table of ``manifest``'s generation, row i first to last."""
        path = self.root / manifest.generation / CHUNKS
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            return [row_to_chunk(json.loads(line)) for line in lines]
        except OSError as exc:
            raise IndexCorruptError(f"cannot read {path}: {exc.strerror}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"unreadable chunk table {path}: {exc!r}") from exc

    def load(self, model: str, dimension: int) -> LoadedIndex:
        """Load the live generation, checking it against the model and its own counts."""
        import faiss

        manifest = self.read_manifest()
        if manifest.model != model or manifest.dimension != dimension:
            raise IndexMismatchError(
                f"index was built with {manifest.model} ({manifest.dimension}-d), "
                f"not {model} ({dimension}-d); run `diplosearch index --rebuild`"
            )
        folder = self.root / manifest.generation
        chunks = self.read_chunks(manifest)
        try:
            data = np.fromfile(folder / VECTORS, dtype=np.uint8)
            index = faiss.deserialize_index(data)
        except Exception as exc:  # FAISS raises RuntimeError; numpy OSError/ValueError
            raise IndexCorruptError(f"unreadable vectors {folder / VECTORS}: {exc}") from exc
        if not (index.ntotal == len(chunks) == manifest.chunks):
            raise IndexCorruptError(
                f"index {folder} disagrees with itself: {index.ntotal} vectors, "
                f"{len(chunks)} chunk rows, manifest says {manifest.chunks}"
            )
        if index.d != manifest.dimension:
            raise IndexCorruptError(
                f"vectors in {folder} are {index.d}-d, manifest says {manifest.dimension}-d"
            )
        starts, total = [], 0
        for chunk in chunks:
            starts.append(total)
            total += len(chunk.sentence_texts)
        try:
            sentences = np.load(folder / SENTENCES, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(
                f"unreadable sentence vectors {folder / SENTENCES}: {exc}"
            ) from exc
        if sentences.shape != (total, manifest.dimension):
            raise IndexCorruptError(
                f"{folder / SENTENCES} holds {sentences.shape}, the chunk table needs "
                f"({total}, {manifest.dimension})"
            )
        return LoadedIndex(
            manifest=manifest,
            chunks=chunks,
            faiss_index=index,
            folder=folder,
            sentence_vectors=sentences,
            sentence_start=starts,
        )

    def write(
        self,
        manifest: Manifest,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        sentence_vectors: np.ndarray,
    ) -> str:
        """Commit a new generation; call with :meth:`writer_lock` held. Returns its name."""
        import faiss

        from diplosearch import lexical

        if len(chunks) != len(vectors) or manifest.chunks != len(chunks):
            raise ValueError("chunks, vectors and manifest counts differ")
        self.root.mkdir(parents=True, exist_ok=True)
        existing = [int(m.group(1)) for m in map(_GENERATION_RE.match, self._names()) if m]
        name = f"gen-{max(existing, default=0) + 1:06d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=self.root))
        try:
            index = faiss.IndexFlatIP(manifest.dimension)
            if len(vectors):
                index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            _write_file(tmp / VECTORS, faiss.serialize_index(index).tobytes())
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(sentence_vectors, dtype=np.float32))
            _write_file(tmp / SENTENCES, buffer.getvalue())
            rows = "".join(json.dumps(chunk_to_row(c), ensure_ascii=False) + "\n" for c in chunks)
            _write_file(tmp / CHUNKS, rows.encode("utf-8"))
            lexical.write(tmp / lexical.FILE, [c.text for c in chunks])
            _write_file(tmp / MANIFEST, manifest.to_json().encode("utf-8"))
            _fsync_dir(tmp)
            tmp.rename(self.root / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        pointer = self.root / f".{CURRENT}.tmp"
        _write_file(pointer, (name + "\n").encode("utf-8"))
        os.replace(pointer, self.root / CURRENT)
        _fsync_dir(self.root)
        self._prune(keep={name, *self._previous(name)})
        return name

    def _names(self) -> list[str]:
        return [p.name for p in self.root.iterdir()] if self.root.exists() else []

    def _previous(self, name: str) -> list[str]:
        def number(entry: str) -> int:
            match = _GENERATION_RE.match(entry)
            return int(match.group(1)) if match else -1

        older = sorted((n for n in self._names() if 0 <= number(n) < number(name)), key=number)
        return older[-1:]

    def _prune(self, keep: set[str]) -> None:
        """Drop generations but the live one and its predecessor, and dead temporaries."""
        for entry in self._names():
            if (_GENERATION_RE.match(entry) and entry not in keep) or entry.startswith(".tmp-"):
                shutil.rmtree(self.root / entry, ignore_errors=True)


def nearest(index: Any, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
    """(row, score) of the ``k`` best rows. FAISS pads with label -1 when it has fewer
    than ``k`` answers (k above the count, or approximate indexes): those are dropped."""
    k = min(k, index.ntotal)
    if k <= 0:
        return []
    scores, labels = index.search(np.ascontiguousarray(vector, dtype=np.float32)[None, :], k)
    return [
        (int(row), float(score))
        for row, score in zip(labels[0], scores[0], strict=False)
        if row >= 0
    ]
