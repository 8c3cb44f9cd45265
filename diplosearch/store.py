"""On-disk index: checksummed generations, committed by an atomic pointer switch.

Layout of the index folder::

    CURRENT                 "gen-000007 <sha256 of its manifest>", the same for the last
                            good generation before it, and "sum <sha256 of those lines>"
                            (replaced atomically)
    gen-000007/
        manifest.json       format, model, dimension, chunker, per-source hashes, counts,
                            and the SHA-256 and size of every other file of the generation
        chunks.jsonl        line i describes row i of the FAISS index
        rows.npy            byte offset of each row in chunks.jsonl, first sentence vector
        vectors.faiss       FAISS flat or HNSW index over L2-normalised vectors (cosine)
        lexical/            Tantivy BM25 index of the same rows (row = fast field)
        sentences.npy       vectors of the sentences of multi-sentence chunks, in row order
    damaged-gen-000006-…/   a generation that failed its checks, set aside, never deleted
    embeddings.sqlite       embedding cache (see cache.py)
    .verified.json          stat stamps of files whose checksums passed (see _check_file)
    encoders/<model>/       ONNX query encoder (see encoder.py)
    .lock, .lock.owner      held by the one process writing, and who that is

As in Lucene's segments_N commit: a build writes a whole new generation in a temporary
folder with our own writes (FAISS's ``write_index`` has no fsync and was seen to return
normally on a full disk with a short file), fsyncs every file and the folder, renames it
into place, and only then replaces ``CURRENT``. Until that replace, readers see the old
generation whole; after it, the new one whole. Every load checks the manifest against the
checksum in ``CURRENT`` and every file against the manifest (FAISS's own loader misses most
flipped bytes) -- by SHA-256 once per change of the file, by stat stamp in between -- so
damage is refused, never answered from; the previous generation, kept
until the next commit, then answers with a warning. JSON, Tantivy's and FAISS's formats
and ``.npy`` without pickle only: loading an index runs no code.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from diplosearch.chunks import Chunk
from diplosearch.corpus import stat_stamp
from diplosearch.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    IndexWriteError,
)
from diplosearch.folders import staging_folder
from diplosearch.lexical import LOCK_FILES
from diplosearch.records import (
    CHUNKS,
    CURRENT,
    DATA_FILES,
    DOCUMENTS,
    LEXICAL,
    MANIFEST,
    ROWS,
    SENTENCES,
    VECTORS,
    FileEntry,
    Manifest,
    Pointer,
    _sha256,
    chunk_to_row,
    row_to_chunk,
)

CACHE = "embeddings.sqlite"
#: Stat stamps of index files whose checksums passed (see ``_check_file``).
VERIFIED = ".verified.json"
ENCODERS = "encoders"
LOCK = ".lock"
LOCK_OWNER = ".lock.owner"
DAMAGED = "damaged-"
_GENERATION_RE = re.compile(r"^gen-(\d{6,})$")
_POINTER_LINE_RE = re.compile(r"^(gen-\d{6,}) ([0-9a-f]{64})$")
#: Fault injection for the crash tests: ``DIPLOSEARCH_CRASH_AT=<step>`` kills the process
#: with SIGKILL when a build reaches that step of its commit.
CRASH_ENV = "DIPLOSEARCH_CRASH_AT"
COMMIT_STEPS = ("files-written", "generation-renamed", "pointer-written", "pointer-replaced")


def _step(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ChunkTable(Sequence[Chunk]):
    """The chunk table, read a row at a time: row i is line i of ``chunks.jsonl``, found
    through the byte offsets in ``rows.npy``. A query parses the rows it shows, so its
    cost does not grow with the table (pyserini's docid file, with offsets)."""

    def __init__(self, path: Path, offsets: np.ndarray) -> None:
        self.path = path
        self._offsets = offsets
        self._data: Any = np.memmap(path, dtype=np.uint8, mode="r") if offsets[-1] else b""
        self._parsed: dict[int, Chunk] = {}

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, row: Any) -> Any:
        if type(row) is int and (chunk := self._parsed.get(row)) is not None:
            return chunk  # a query reads the same rows many times over
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if not -len(self) <= row < len(self):
            raise IndexError(row)
        row %= len(self)
        chunk = self._parsed.get(row)
        if chunk is None:
            start, end = int(self._offsets[row]), int(self._offsets[row + 1])
            try:
                line = bytes(self._data[start:end]).decode("utf-8")
                if not line.endswith("\n"):
                    raise ValueError("row does not end a line")
                chunk = row_to_chunk(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise IndexCorruptError(f"unreadable row {row} of {self.path}: {exc!r}") from exc
            self._parsed[row] = chunk
        return chunk

    def __iter__(self) -> Iterator[Chunk]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


@dataclass
class LoadedIndex:
    manifest: Manifest
    chunks: ChunkTable
    faiss_index: Any
    folder: Path
    #: Sentence vectors; chunk i's are rows ``sentence_start[i]`` to ``sentence_start[i+1]``.
    sentence_vectors: np.ndarray
    sentence_start: np.ndarray
    #: One vector per document, in manifest order (see ``document_matrix``).
    document_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    _lexical: Any = field(default=None, repr=False, compare=False)

    def sentence_vectors_of(self, row: int) -> np.ndarray:
        start, end = int(self.sentence_start[row]), int(self.sentence_start[row + 1])
        expected = len(self.chunks[row].vector_spans)
        if end - start != expected:
            raise IndexCorruptError(
                f"{self.folder / ROWS} gives row {row} {end - start} sentence vectors, "
                f"its chunk has {expected} sentences"
            )
        return np.asarray(self.sentence_vectors[start:end], dtype=np.float32)

    def best_sentence_cosines(self, rows: Sequence[int], vector: np.ndarray) -> np.ndarray:
        """For each of ``rows``, the best cosine of its sentence vectors with ``vector``
        (-1 for a row without any): one gather and one product for all rows."""
        index = np.asarray(rows, dtype=np.int64)
        starts = self.sentence_start[index].astype(np.int64)
        counts = self.sentence_start[index + 1].astype(np.int64) - starts
        for row, count in zip(rows, counts.tolist(), strict=True):
            expected = len(self.chunks[row].vector_spans)
            if count != expected:
                raise IndexCorruptError(
                    f"{self.folder / ROWS} gives row {row} {count} sentence vectors, "
                    f"its chunk has {expected} sentences"
                )
        best = np.full(len(rows), -1.0, dtype=np.float32)
        if not counts.sum():
            return best
        offsets = np.cumsum(counts) - counts
        gather = np.repeat(starts - offsets, counts) + np.arange(int(counts.sum()))
        cosines = np.asarray(self.sentence_vectors[gather], dtype=np.float32) @ vector
        some = counts > 0
        best[some] = np.maximum.reduceat(cosines, offsets[some])
        return best

    def document_cosines(self, sources: Sequence[str], vector: np.ndarray) -> np.ndarray:
        """The cosine of ``vector`` with each of ``sources``' document vectors."""
        numbers = np.array([self.document_numbers[s] for s in sources], dtype=np.int64)
        return np.asarray(self.document_vectors[numbers], dtype=np.float32) @ vector

    @cached_property
    def document_rows(self) -> dict[str, tuple[int, int]]:
        """Each document's rows, ``(first, end)``: a document's chunks are consecutive
        rows, documents in name order (as the manifest lists them)."""
        spans: dict[str, tuple[int, int]] = {}
        start = 0
        for name, entry in self.manifest.sources.items():
            spans[name] = (start, start + entry.chunks)
            start += entry.chunks
        return spans

    @cached_property
    def document_numbers(self) -> dict[str, int]:
        """Each document's row in :attr:`document_vectors` (manifest order)."""
        return {name: number for number, name in enumerate(self.manifest.sources)}

    def document_vector(self, source: str) -> np.ndarray:
        """The mean of a document's chunk vectors, unit length: what the document as a
        whole is about (written with the generation, see ``document_matrix``)."""
        return np.asarray(self.document_vectors[self.document_numbers[source]])

    def lexical(self) -> Any:
        """The BM25 index of this generation, checked against the chunk count; opened once
        and kept open with the rest of the generation."""
        from diplosearch.lexical import LexicalIndex

        if self._lexical is not None:
            return self._lexical
        path = self.folder / LEXICAL
        try:
            index = LexicalIndex(path, self.manifest.acronyms)
            count = index.count()
        except OSError as exc:
            raise IndexCorruptError(f"unreadable lexical index {path}: {exc}") from exc
        if count != len(self.chunks):
            index.close()
            raise IndexCorruptError(
                f"lexical index {path} has {count} rows, the chunk table {len(self.chunks)}"
            )
        self._lexical = index
        return index

    def close(self) -> None:
        if self._lexical is not None:
            self._lexical.close()
            self._lexical = None


def _stat_stamps(folder: Path, names: Iterable[str]) -> list[Any]:
    """What any write to a generation's files would move: a kept generation is reused only
    while these hold, so a file changed under a long-running process is checked again."""
    try:
        return [stat_stamp((folder / name).stat()) for name in names]
    except OSError:
        return [None]


def _verified(info: os.stat_result, sha256: str) -> list[Any]:
    """A file's entry in ``.verified.json``: its stat stamp when ``sha256`` was checked."""
    return [*stat_stamp(info), sha256]


def _fsync(path: Path) -> None:
    """A folder's entries, or a file another library wrote (Tantivy's), onto the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    """Write, flush and fsync; a short write (a full disk) raises instead of passing."""
    with path.open("wb") as handle:
        written = handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if written != len(data) or path.stat().st_size != len(data):
        raise OSError(f"short write: {path.stat().st_size} of {len(data)} bytes")


class IndexStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        #: Warnings met while reading (a damaged generation passed over), for the caller.
        self.notices: list[str] = []
        #: Parsed manifests by (generation, checksum): a generation never changes.
        self._manifests: dict[tuple[str, str], Manifest] = {}
        #: A query opens the index on a second thread while it checks the corpus (see
        #: Engine.search): both need the manifest, and it is parsed once.
        self._manifest_lock = threading.Lock()
        #: The last generation loaded, with the pointer that named it: a process that
        #: answers many queries loads a generation once, until CURRENT changes.
        self._loaded: tuple[Pointer, LoadedIndex, list[str], list[Any]] | None = None

    @property
    def cache_path(self) -> Path:
        return self.root / CACHE

    def encoder_dir(self, key: str) -> Path:
        return self.root / ENCODERS / key

    # -- the writer lock ----------------------------------------------------------------

    @contextlib.contextmanager
    def writer_lock(self, timeout: float = 600) -> Iterator[None]:
        """One writer at a time: an OS lock (released if the process dies), plus a note
        of who holds it so that a second writer can say so."""
        from filelock import FileLock, Timeout

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.root / LOCK))
            lock.acquire(timeout=timeout)
        except Timeout as exc:  # before OSError: filelock's Timeout is a TimeoutError
            raise IndexLockedError(f"{self.root} is being written by {self.lock_owner()}") from exc
        except OSError as exc:  # not writable, a folder where the lock file goes, ...
            raise IndexWriteError.during_build(self.root / LOCK, exc) from exc
        try:
            owner = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "command": " ".join(os.path.basename(a) for a in sys.argv[:3]),
                "since": dt.datetime.now().isoformat(timespec="seconds"),
            }
            try:
                (self.root / LOCK_OWNER).write_text(json.dumps(owner), encoding="utf-8")
            except OSError as exc:  # a disk full to the last byte
                raise IndexWriteError.during_build(self.root / LOCK_OWNER, exc) from exc
            yield
        finally:
            with contextlib.suppress(OSError):
                (self.root / LOCK_OWNER).unlink()
            lock.release()

    def lock_owner(self) -> str:
        try:
            owner = json.loads((self.root / LOCK_OWNER).read_text(encoding="utf-8"))
            return (
                f"process {owner['pid']} on {owner['host']} ({owner['command']}) "
                f"since {owner['since']}"
            )
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    # -- reading ------------------------------------------------------------------------

    def pointer(self) -> Pointer | None:
        path = self.root / CURRENT
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(f"cannot read {path}: {exc}") from exc
        if _GENERATION_RE.match(text.strip()):  # written by an older diplosearch
            raise IndexMismatchError(f"{path} is from an older index format")
        body, _, footer = text.rpartition("sum ")
        if footer != f"{_sha256(body.encode())}\n":
            raise IndexCorruptError(f"{path} is damaged (checksum mismatch)")
        lines = [_POINTER_LINE_RE.match(line) for line in body.splitlines()]
        if not lines or len(lines) > 2 or not all(lines):
            raise IndexCorruptError(f"{path} is damaged: it does not name a generation")
        pairs = [(m.group(1), m.group(2)) for m in lines if m]
        return Pointer(live=pairs[0], previous=pairs[1] if len(pairs) > 1 else None)

    def current(self) -> str | None:
        pointer = self.pointer()
        return pointer.live[0] if pointer else None

    def _require_pointer(self) -> Pointer:
        pointer = self.pointer()
        if pointer is None:
            raise IndexMissingError(f"no index in {self.root}; run `diplosearch index`")
        return pointer

    def _manifest(self, name: str, sha256: str) -> Manifest:
        with self._manifest_lock:
            return self._parse_manifest(name, sha256)

    def _parse_manifest(self, name: str, sha256: str) -> Manifest:
        cached = self._manifests.get((name, sha256))
        if cached is not None and (self.root / name).is_dir():
            return cached
        path = self.root / name / MANIFEST
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IndexCorruptError(f"cannot read {path}: {exc.strerror}") from exc
        if _sha256(data) != sha256:
            raise IndexCorruptError(f"{path} is damaged (checksum mismatch)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IndexCorruptError(f"{path} is not UTF-8") from exc
        manifest = Manifest.from_json(text, name)
        self._manifests[(name, sha256)] = manifest
        return manifest

    def _candidates(self) -> list[tuple[str, str]]:
        pointer = self._require_pointer()
        return [pointer.live] + ([pointer.previous] if pointer.previous else [])

    def read_manifest(self) -> Manifest:
        """The live manifest; if it is damaged, the previous generation's, with a notice."""
        return self._first_good(lambda name, sha: self._manifest(name, sha))

    def _first_good(self, read: Any) -> Any:
        first: IndexCorruptError | None = None
        for name, sha in self._candidates():
            try:
                value = read(name, sha)
            except IndexCorruptError as exc:
                first = first or exc
                continue
            if first is not None:
                self.notices.append(
                    f"{first}; answering from the previous generation {name} "
                    "(`diplosearch index` sets the damaged one aside and rebuilds)"
                )
            return value
        assert first is not None
        raise first

    def live_is_damaged(self) -> IndexCorruptError | None:
        """Why the live generation fails its checks, if it does."""
        name, sha = self._require_pointer().live
        try:
            self._load_generation(name, sha, full=True)
        except IndexCorruptError as exc:
            return exc
        except IndexMismatchError:
            return None
        return None

    def read_chunks(self, manifest: Manifest) -> list[Chunk]:
        """The chunk table of ``manifest``'s generation, checked against its checksum."""
        folder = self.root / manifest.generation
        self._check_file(folder, CHUNKS, manifest, self._read_stamps())
        return self._parse_chunks(folder / CHUNKS)

    @staticmethod
    def _parse_chunks(path: Path) -> list[Chunk]:
        try:
            # Split on "\n" only: JSON leaves U+2028, U+0085 and friends raw inside strings,
            # and str.splitlines() would cut rows there.
            lines = path.read_text(encoding="utf-8").split("\n")
            return [row_to_chunk(json.loads(line)) for line in lines if line]
        except OSError as exc:
            raise IndexCorruptError(f"cannot read {path}: {exc.strerror}") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IndexCorruptError(f"unreadable chunk table {path}: {exc!r}") from exc

    def _check_file(
        self, folder: Path, name: str, manifest: Manifest, stamps: dict[str, Any] | None = None
    ) -> None:
        """Size and SHA-256 of a file against the manifest.

        With ``stamps`` (a query), a file whose stat stamp -- size, mtime, ctime, inode --
        is the one recorded when its checksum last passed is not read again: any write to
        it, even one that puts the mtime back, moves the ctime. At a million chunks that
        is the difference between hashing gigabytes per query and a few stats. ``verify``
        and ``index`` pass no stamps and read everything, as Lucene checks checksums in
        CheckIndex and merges, not on every open."""
        path = folder / name
        entry = manifest.files[name]
        try:
            info = path.stat()
        except OSError as exc:
            raise IndexCorruptError(f"{path} is missing ({exc.strerror})") from exc
        if info.st_size != entry.size:
            raise IndexCorruptError(
                f"{path} is damaged: {info.st_size} bytes, the manifest says {entry.size}"
            )
        key = f"{folder.name}/{name}"
        stamp = _verified(info, entry.sha256)
        if stamps is not None and stamps.get(key) == stamp:
            return
        if _file_sha256(path) != entry.sha256:
            raise IndexCorruptError(f"{path} is damaged (checksum mismatch)")
        if stamps is not None:
            stamps[key] = stamp

    def _read_stamps(self) -> dict[str, Any]:
        try:
            stamps = json.loads((self.root / VERIFIED).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return stamps if isinstance(stamps, dict) else {}

    def _save_stamps(self, stamps: dict[str, Any]) -> None:
        """Best effort: a read-only or full index folder only means hashing next time."""
        live = {n for n in self._names() if _GENERATION_RE.match(n)}
        kept = {k: v for k, v in stamps.items() if k.split("/")[0] in live}
        staged = self.root / f"{VERIFIED}.{os.getpid()}.tmp"
        try:
            staged.write_text(json.dumps(kept), encoding="utf-8")
            os.replace(staged, self.root / VERIFIED)
        except OSError:
            with contextlib.suppress(OSError):
                staged.unlink()

    def load(self, model: str, dimension: int) -> LoadedIndex:
        """Load the live generation after checking every file; if it is damaged, the
        previous one, with a notice. A model or dimension mismatch is never skipped.

        A reader racing two quick commits can find its generation already pruned; it then
        starts again from the new ``CURRENT``."""
        for attempt in range(3):
            pointer = self.pointer()
            cached = self._loaded
            if (
                cached is not None
                and pointer == cached[0]
                and _stat_stamps(cached[1].folder, cached[1].manifest.files) == cached[3]
            ):
                loaded = cached[1]
                self.notices.extend(n for n in cached[2] if n not in self.notices)
                break
            try:
                loaded = self._first_good(self._load_generation)
                if pointer is not None:
                    stamps = _stat_stamps(loaded.folder, loaded.manifest.files)
                    self._loaded = (pointer, loaded, list(self.notices), stamps)
                break
            except IndexCorruptError:
                if attempt == 2 or self.pointer() == pointer:
                    raise
                self.notices.clear()
        manifest = loaded.manifest
        if manifest.model != model or manifest.dimension != dimension:
            raise IndexMismatchError(
                f"index was built with {manifest.model} ({manifest.dimension}-d), "
                f"not {model} ({dimension}-d); run `diplosearch index --rebuild`"
            )
        return loaded

    def _load_generation(self, name: str, sha: str, *, full: bool = False) -> LoadedIndex:
        """Check and open one generation; ``full`` re-reads every checksum (see
        ``_check_file``). Vectors are memory-mapped, not read: a query touches the pages
        it needs."""
        import faiss

        from diplosearch import ann

        manifest = self._manifest(name, sha)
        folder = self.root / name
        stamps = None if full else self._read_stamps()
        before = dict(stamps or {})
        for file in manifest.files:
            self._check_file(folder, file, manifest, stamps)
        if stamps is not None and stamps != before:
            self._save_stamps(stamps)
        try:
            rows = np.load(folder / ROWS, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"unreadable row table {folder / ROWS}: {exc}") from exc
        try:
            index = faiss.read_index(
                str(folder / VECTORS), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
            )
        except Exception as exc:  # FAISS raises RuntimeError
            raise IndexCorruptError(f"unreadable vectors {folder / VECTORS}: {exc}") from exc
        try:
            sentences = np.load(folder / SENTENCES, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError) as exc:
            path = folder / SENTENCES
            raise IndexCorruptError(f"unreadable sentence vectors {path}: {exc}") from exc
        count = manifest.chunks
        if not (index.ntotal == len(rows) - 1 == count):
            raise IndexCorruptError(
                f"index {folder} disagrees with itself: {index.ntotal} vectors, "
                f"{len(rows) - 1} chunk rows, manifest says {count}"
            )
        if rows.shape != (count + 1, 2) or rows.dtype != np.int64:
            raise IndexCorruptError(f"{folder / ROWS} holds {rows.shape} {rows.dtype}")
        if index.d != manifest.dimension or ann.kind_of(index) != manifest.index_type:
            raise IndexCorruptError(
                f"vectors in {folder} are a {index.d}-d {ann.kind_of(index)} index, the "
                f"manifest says {manifest.dimension}-d {manifest.index_type}"
            )
        offsets, starts = rows[:, 0], rows[:, 1]
        size = (folder / CHUNKS).stat().st_size
        if (
            offsets[0] != 0
            or starts[0] != 0
            or offsets[-1] != size
            or (count and (np.diff(offsets).min() <= 0 or np.diff(starts).min() < 0))
        ):
            raise IndexCorruptError(f"{folder / ROWS} does not describe {folder / CHUNKS}")
        try:
            documents = np.load(folder / DOCUMENTS, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError) as exc:
            path = folder / DOCUMENTS
            raise IndexCorruptError(f"unreadable document vectors {path}: {exc}") from exc
        expected = (len(manifest.sources), manifest.dimension)
        if documents.shape != expected or documents.dtype != np.float32:
            raise IndexCorruptError(
                f"{folder / DOCUMENTS} holds {documents.shape} {documents.dtype}, the "
                f"manifest needs {expected} float32"
            )
        total = int(starts[-1])
        if sentences.shape != (total, manifest.dimension) or sentences.dtype != np.float32:
            raise IndexCorruptError(
                f"{folder / SENTENCES} holds {sentences.shape} {sentences.dtype}, the row "
                f"table needs ({total}, {manifest.dimension}) float32"
            )
        return LoadedIndex(
            manifest=manifest,
            chunks=ChunkTable(folder / CHUNKS, offsets),
            faiss_index=index,
            folder=folder,
            sentence_vectors=sentences,
            sentence_start=starts,
            document_vectors=documents,
        )

    # -- writing ------------------------------------------------------------------------

    def write(
        self,
        manifest: Manifest,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        sentence_vectors: np.ndarray,
    ) -> str:
        """Commit a new generation; call with :meth:`writer_lock` held. Returns its name.

        Any failure to write (a full disk, an I/O error) leaves the live generation as it
        was and raises :class:`IndexWriteError`."""
        try:
            return self._write(manifest, chunks, vectors, sentence_vectors)
        except OSError as exc:
            raise IndexWriteError.during_build(self.root, exc) from exc

    def _write(
        self,
        manifest: Manifest,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        sentence_vectors: np.ndarray,
    ) -> str:
        import faiss

        from diplosearch import ann, lexical

        if len(chunks) != len(vectors) or manifest.chunks != len(chunks):
            raise ValueError("chunks, vectors and manifest counts differ")
        self.root.mkdir(parents=True, exist_ok=True)
        previous = self._last_good()
        existing = [_number(n) for n in self._names()]
        name = f"gen-{max(existing, default=0) + 1:06d}"
        tmp = staging_folder(f".tmp-{name}-", self.root)
        try:
            index = ann.build(manifest.index_type, vectors, manifest.dimension)
            _write_file(tmp / VECTORS, faiss.serialize_index(index).tobytes())
            del index
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(sentence_vectors, dtype=np.float32))
            _write_file(tmp / SENTENCES, buffer.getvalue())
            buffer = io.BytesIO()
            np.save(buffer, document_matrix(manifest, chunks, vectors))
            _write_file(tmp / DOCUMENTS, buffer.getvalue())
            rows = [
                (json.dumps(chunk_to_row(c), ensure_ascii=False) + "\n").encode("utf-8")
                for c in chunks
            ]
            table = np.zeros((len(chunks) + 1, 2), dtype=np.int64)
            table[1:, 0] = np.cumsum([len(r) for r in rows], dtype=np.int64)
            table[1:, 1] = np.cumsum([len(c.vector_spans) for c in chunks], dtype=np.int64)
            if table[-1, 1] != len(sentence_vectors):
                raise ValueError("sentence vectors and chunk sentences differ")
            _write_file(tmp / CHUNKS, b"".join(rows))
            del rows
            buffer = io.BytesIO()
            np.save(buffer, table)
            _write_file(tmp / ROWS, buffer.getvalue())
            titles = {name: entry.title or "" for name, entry in manifest.sources.items()}
            lexical.write(
                tmp / LEXICAL,
                [c.text for c in chunks],
                [f"{titles.get(c.source, '')}\n{c.section or ''}" for c in chunks],
            )
            names = [*DATA_FILES, *(f"{LEXICAL}/{p.name}" for p in (tmp / LEXICAL).iterdir())]
            _fsync(tmp / LEXICAL)
            files: dict[str, FileEntry] = {}
            stamps = self._read_stamps()
            for f in sorted(names):  # stamped as checked: the first query need not hash again
                _fsync(tmp / f)
                info = (tmp / f).stat()
                files[f] = FileEntry(sha256=_file_sha256(tmp / f), size=info.st_size)
                stamps[f"{name}/{f}"] = _verified(info, files[f].sha256)
            text = replace(manifest, files=files).to_json().encode("utf-8")
            _write_file(tmp / MANIFEST, text)
            _fsync(tmp)
            _step("files-written")
            tmp.rename(self.root / name)
            _fsync(self.root)
            _step("generation-renamed")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        pointer = Pointer(live=(name, _sha256(text)), previous=previous)
        staged = self.root / f".{CURRENT}.tmp"
        _write_file(staged, pointer.to_text().encode("utf-8"))
        _step("pointer-written")
        os.replace(staged, self.root / CURRENT)
        _fsync(self.root)
        _step("pointer-replaced")
        self._prune(keep={name, *([previous[0]] if previous else [])})
        self._save_stamps(stamps)
        return name

    def _last_good(self) -> tuple[str, str] | None:
        """The generation to keep as the fallback of the next commit: the live one if it
        passes every check, else the previous one if that does. A generation that fails
        is set aside (renamed ``damaged-…``), never deleted, and a notice says where."""
        try:
            candidates = self._candidates()
        except (IndexMissingError, IndexCorruptError, IndexMismatchError):
            return None
        for name, sha in candidates:
            try:
                self._load_generation(name, sha)
                return name, sha
            except IndexMismatchError:
                continue  # an older format: not ours to keep as a fallback
            except IndexCorruptError as exc:
                if (self.root / name).is_dir():
                    where = self.quarantine(name)
                    self.notices.append(f"{exc}; the damaged generation is kept as {where.name}")
        return None

    def repair_pointer(self, damage: IndexCorruptError) -> str:
        """After ``CURRENT`` failed its checks: set it aside (renamed, never deleted) and
        point at the newest generations that pass every check, as Lucene falls back to
        the newest readable commit. Returns what was done, for the user. Call with the
        writer lock held."""
        where = self.quarantine(CURRENT)
        intact: list[tuple[str, str]] = []
        for name in sorted((n for n in self._names() if _GENERATION_RE.match(n)), reverse=True):
            try:
                sha = _sha256((self.root / name / MANIFEST).read_bytes())
                self._load_generation(name, sha, full=True)
            except (OSError, IndexCorruptError, IndexMismatchError):
                continue
            intact.append((name, sha))
            if len(intact) == 2:
                break
        if not intact:
            return f"{damage}; set aside as {where.name}, and no generation is intact"
        pointer = Pointer(live=intact[0], previous=intact[1] if len(intact) > 1 else None)
        staged = self.root / f".{CURRENT}.tmp"
        _write_file(staged, pointer.to_text().encode("utf-8"))
        os.replace(staged, self.root / CURRENT)
        _fsync(self.root)
        return (
            f"{damage}; set aside as {where.name}; {intact[0][0]}, the newest generation "
            "that passes every check, is live again"
        )

    def quarantine(self, name: str) -> Path:
        """Set a damaged generation (or ``CURRENT``) aside, renamed, never deleted, and
        return where."""
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        target = self.root / f"{DAMAGED}{name}-{stamp}"
        (self.root / name).rename(target)
        return target

    def _names(self) -> list[str]:
        return [p.name for p in self.root.iterdir()] if self.root.exists() else []

    def _prune(self, keep: set[str]) -> None:
        """Drop generations but the live one and its fallback, and dead temporaries; set
        aside (``damaged-``) generations stay until the user removes them."""
        for entry in self._names():
            if (_GENERATION_RE.match(entry) and entry not in keep) or entry.startswith(".tmp-"):
                shutil.rmtree(self.root / entry, ignore_errors=True)

    # -- checking -----------------------------------------------------------------------

    def verify(self) -> tuple[list[str], list[str]]:
        """Check everything, like Lucene's CheckIndex: (problems, facts checked)."""
        problems: list[str] = []
        checked: list[str] = []
        try:
            pointer = self._require_pointer()
        except (IndexMissingError, IndexCorruptError, IndexMismatchError) as exc:
            return [str(exc)], checked
        generations = [pointer.live] + ([pointer.previous] if pointer.previous else [])
        for role, (name, sha) in zip(("live", "previous"), generations, strict=False):
            try:
                loaded = self._load_generation(name, sha, full=True)
            except (IndexCorruptError, IndexMismatchError) as exc:
                problems.append(f"{role} generation {name}: {exc}")
                continue
            try:
                for row in range(len(loaded.chunks)):
                    loaded.sentence_vectors_of(row)  # parses the row, checks its sentences
            except IndexCorruptError as exc:
                problems.append(f"{role} generation {name}: {exc}")
                continue
            vectors = loaded.faiss_index.reconstruct_n(0, loaded.faiss_index.ntotal)
            documents = np.asarray(loaded.document_vectors)
            # A document without chunks has a zero vector; every other one is unit length.
            documents = documents[np.linalg.norm(documents, axis=1) > 0]
            for label, matrix in (
                ("vectors", vectors),
                ("sentence vectors", loaded.sentence_vectors),
                ("document vectors", documents),
            ):
                if not np.isfinite(matrix).all():
                    problems.append(f"{role} generation {name}: {label} hold NaN or infinity")
                elif len(matrix) and np.abs(np.linalg.norm(matrix, axis=1) - 1).max() > 1e-3:
                    problems.append(f"{role} generation {name}: {label} are not unit length")
            try:
                expected = document_matrix(loaded.manifest, loaded.chunks, vectors)
            except ValueError as exc:
                problems.append(f"{role} generation {name}: {exc}")
                expected = np.asarray(loaded.document_vectors)
            if not np.allclose(expected, loaded.document_vectors, atol=1e-5):
                problems.append(
                    f"{role} generation {name}: document vectors are not the means of their "
                    "chunks' vectors"
                )
            try:
                loaded.lexical()
            except IndexCorruptError as exc:
                problems.append(f"{role} generation {name}: {exc}")
            finally:
                loaded.close()
            folder = self.root / name
            expected = {MANIFEST, *loaded.manifest.files}
            extra = sorted(  # Tantivy readers leave an empty lock file: not data
                path
                for p in folder.rglob("*")
                if not p.is_dir()
                and (path := p.relative_to(folder).as_posix()) not in expected
                and p.name not in LOCK_FILES
            )
            if extra:
                problems.append(f"{role} generation {name}: unexpected files {', '.join(extra)}")
            checked.append(
                f"{role} generation {name}: {len(loaded.manifest.sources)} documents, "
                f"{loaded.manifest.chunks} chunks in a {loaded.manifest.index_type} index, "
                f"{len(loaded.manifest.files) + 1} files checksummed"
            )
        known = {name for name, _ in generations}
        for entry in sorted(self._names()):
            if _GENERATION_RE.match(entry) and entry not in known:
                checked.append(
                    f"note: {entry} is not named by {CURRENT} (an interrupted "
                    "commit); the next build removes it"
                )
            elif entry.startswith(".tmp-"):
                checked.append(
                    f"note: {entry} is left by an interrupted build; the next build removes it"
                )
            elif entry.startswith(DAMAGED):
                kind = "pointer" if CURRENT in entry else "generation"
                problems.append(f"damaged {kind} set aside: {entry} (inspect or delete it)")
        return problems, checked


def document_matrix(manifest: Manifest, chunks: Sequence[Chunk], vectors: np.ndarray) -> np.ndarray:
    """Per document (manifest order), the unit mean of its chunks' vectors; a document's
    chunks are consecutive rows, documents in manifest order (zeros for one without)."""
    out = np.zeros((len(manifest.sources), manifest.dimension), dtype=np.float32)
    start = 0
    for number, (name, entry) in enumerate(manifest.sources.items()):
        end = start + entry.chunks
        if entry.chunks:
            if chunks[start].source != name or chunks[end - 1].source != name:
                raise ValueError(f"the rows of {name} are not {start} to {end}")
            mean = np.asarray(vectors[start:end], dtype=np.float64).mean(axis=0)
            out[number] = mean / (np.linalg.norm(mean) or 1.0)
        start = end
    if start != len(chunks):
        raise ValueError("the manifest's chunk counts do not add up to the chunk table")
    return out


def _number(entry: str) -> int:
    """A folder's generation number, set-aside ones included, so numbers only grow."""
    match = re.match(r"^gen-(\d{6,})(?:-|$)", entry.removeprefix(DAMAGED))
    return int(match.group(1)) if match else 0


#: A filter admitting at most this many rows is searched exactly, row by row; a wider one
#: is applied inside the index search (an approximate index then skips what it rejects).
EXACT_SUBSET = 20_000


def nearest(
    index: Any, vector: np.ndarray, k: int, allowed: set[int] | None = None
) -> list[tuple[int, float]]:
    """(row, score) of the ``k`` best rows, among ``allowed`` ones if given. FAISS pads
    with label -1 when it has fewer than ``k`` answers (k above the count, or
    approximate indexes): those are dropped."""
    import faiss

    query = np.ascontiguousarray(vector, dtype=np.float32)[None, :]
    if allowed is not None and len(allowed) <= EXACT_SUBSET:
        rows = np.array(sorted(allowed), dtype=np.int64)
        if not len(rows):
            return []
        scores = index.reconstruct_batch(rows) @ query[0]
        best = np.argsort(-scores, kind="stable")[:k]
        return [(int(rows[i]), float(scores[i])) for i in best]
    k = min(k, index.ntotal if allowed is None else len(allowed))
    if k <= 0:
        return []
    params = None
    if allowed is not None:
        selector = faiss.IDSelectorBatch(np.array(sorted(allowed), dtype=np.int64))
        params = (
            faiss.SearchParametersHNSW(sel=selector, efSearch=index.hnsw.efSearch)
            if isinstance(index, faiss.IndexHNSW)
            else faiss.SearchParameters(sel=selector)
        )
    scores, labels = index.search(query, k, params=params)
    return [
        (int(row), float(score))
        for row, score in zip(labels[0], scores[0], strict=True)
        if row >= 0
    ]
