"""Reading the index: the pointer, manifests and generations, every file checked against
its checksum before it is used (by stat stamp between changes), damage answered from the
previous generation with a notice. Reading never writes, but for best-effort notes."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from diplosearch.chunks import Chunk
from diplosearch.errors import (
    AccessError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    denied,
    unreadable,
)
from diplosearch.ingest.corpus import Skipped, known_reason
from diplosearch.store import files, folders
from diplosearch.store.files import CACHE, ENCODERS, EXTRACTIONS, SKIPPED, VERIFIED
from diplosearch.store.loaded import ChunkTable, LoadedIndex
from diplosearch.store.records import (
    CHUNKS,
    CURRENT,
    DOCUMENTS,
    MANIFEST,
    ROWS,
    SENTENCES,
    VECTORS,
    FileEntry,
    Manifest,
    Pointer,
    _sha256,
    plain_name,
    row_to_chunk,
)

#: ``np.load`` parses a .npy header with ``ast.literal_eval``, which CPython 3.11 does not
#: make safe on two threads at once (a query opens the index on a second thread while a
#: refresh may check a generation: "AST constructor recursion depth mismatch").
_NPY_LOCK = threading.Lock()


def _load_array(path: Path, what: str) -> np.ndarray:
    """A ``.npy`` file of the index, memory-mapped, never unpickled."""
    try:
        with _NPY_LOCK:
            return np.load(path, allow_pickle=False, mmap_mode="r")
    except OSError as exc:
        raise unreadable(path, exc) from exc
    except ValueError as exc:
        raise IndexCorruptError(f"unreadable {what} {path}: {exc}") from exc


class IndexReader:
    """Reads an index folder (see the package's docstring for its layout)."""

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

    @property
    def extractions_path(self) -> Path:
        return self.root / EXTRACTIONS

    def encoder_dir(self, key: str) -> Path:
        return self.root / ENCODERS / key

    def pointer(self) -> Pointer | None:
        path = self.root / CURRENT
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise unreadable(path, exc) from exc
        except UnicodeDecodeError as exc:
            raise IndexCorruptError(f"{path} is damaged: {exc}") from exc
        if files.GENERATION_RE.match(text.strip()):  # written by an older diplosearch
            raise IndexMismatchError(f"{path} is from an older index format")
        body, _, footer = text.rpartition("sum ")
        if footer != f"{_sha256(body.encode())}\n":
            raise IndexCorruptError(f"{path} is damaged (checksum mismatch)")
        lines = [files.POINTER_LINE_RE.match(line) for line in body.splitlines()]
        if not lines or len(lines) > 2 or not all(lines):
            raise IndexCorruptError(f"{path} is damaged: it does not name a generation")
        pairs = [(m.group(1), m.group(2)) for m in lines if m]
        return Pointer(live=pairs[0], previous=pairs[1] if len(pairs) > 1 else None)

    def current(self) -> str | None:
        pointer = self.pointer()
        return pointer.live[0] if pointer else None

    def require_pointer(self) -> Pointer:
        pointer = self.pointer()
        if pointer is None:
            raise IndexMissingError(f"no index in {self.root}; run `diplosearch index`")
        return pointer

    def _manifest(self, name: str, sha256: str) -> Manifest:
        with self._manifest_lock:
            return self._parse_manifest(name, sha256)

    def _parse_manifest(self, name: str, sha256: str) -> Manifest:
        cached = self._manifests.get((name, sha256))
        if cached is not None and files.is_dir(self.root / name):
            return cached
        path = self.root / name / MANIFEST
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise unreadable(path, exc) from exc
        if _sha256(data) != sha256:
            raise IndexCorruptError(f"{path} is damaged (checksum mismatch)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IndexCorruptError(f"{path} is not UTF-8") from exc
        manifest = Manifest.from_json(text, name)
        self._manifests[(name, sha256)] = manifest
        return manifest

    def candidates(self) -> list[tuple[str, str]]:
        pointer = self.require_pointer()
        return [pointer.live] + ([pointer.previous] if pointer.previous else [])

    def read_manifest(self) -> Manifest:
        """The live manifest; if it is damaged, the previous generation's, with a notice."""
        return self._first_good(lambda name, sha: self._manifest(name, sha))

    def _first_good(self, read: Any) -> Any:
        first: IndexCorruptError | None = None
        for name, sha in self.candidates():
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
        name, sha = self.require_pointer().live
        try:
            loaded = self.load_generation(name, sha, full=True)
        except IndexCorruptError as exc:
            return exc
        except IndexMismatchError:
            return None
        return self.encoder_damage(loaded.manifest, full=True)

    def read_chunks(self, manifest: Manifest) -> list[Chunk]:
        """The chunk table of ``manifest``'s generation, checked against its checksum."""
        folder = self.root / manifest.generation
        self.check_file(folder, CHUNKS, manifest.files[CHUNKS], self.read_stamps())
        return self._parse_chunks(folder / CHUNKS)

    @staticmethod
    def _parse_chunks(path: Path) -> list[Chunk]:
        try:
            # Split on "\n" only: JSON leaves U+2028, U+0085 and friends raw inside strings,
            # and str.splitlines() would cut rows there.
            lines = path.read_text(encoding="utf-8").split("\n")
            return [row_to_chunk(json.loads(line)) for line in lines if line]
        except OSError as exc:
            raise unreadable(path, exc) from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IndexCorruptError(f"unreadable chunk table {path}: {exc!r}") from exc

    def check_file(
        self, folder: Path, name: str, entry: FileEntry, stamps: dict[str, Any] | None = None
    ) -> None:
        """Size and SHA-256 of a file against its entry in the manifest.

        With ``stamps`` (a query), a file whose stat stamp -- size, mtime, ctime, inode --
        is the one recorded when its checksum last passed is not read again: any write to
        it, even one that puts the mtime back, moves the ctime. At a million chunks that
        is the difference between hashing gigabytes per query and a few stats. ``verify``
        and ``index`` pass no stamps and read everything, as Lucene checks checksums in
        CheckIndex and merges, not on every open."""
        path = folder / name
        try:
            info = path.stat()
        except OSError as exc:
            raise unreadable(path, exc, missing=True) from exc
        if info.st_size != entry.size:
            raise IndexCorruptError(
                f"{path} is damaged: {info.st_size} bytes, the manifest says {entry.size}"
            )
        key = path.relative_to(self.root).as_posix()
        stamp = files.verified(info, entry.sha256)
        if stamps is not None and stamps.get(key) == stamp:
            return
        try:
            sha256 = files.file_sha256(path)
        except OSError as exc:
            raise unreadable(path, exc) from exc
        if sha256 != entry.sha256:
            raise IndexCorruptError(f"{path} is damaged (checksum mismatch)")
        if stamps is not None:
            stamps[key] = stamp

    def read_note(self, name: str) -> dict[str, Any]:
        """A best-effort note of the index folder (``.verified.json``, ``.skipped.json``):
        anything unreadable is an empty note, and costs only work redone."""
        try:
            note = json.loads((self.root / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return note if isinstance(note, dict) else {}

    def save_note(self, name: str, note: dict[str, Any]) -> None:
        """Best effort: a read-only or full index folder only means work redone next time.
        Staged in a file of its own (``mkstemp``: a new name, created exclusively, so no
        link planted in a shared folder is followed and two threads never share it)."""
        try:
            fd, staged = tempfile.mkstemp(prefix=f"{name}.", suffix=".tmp", dir=self.root)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(note))
            os.chmod(staged, 0o666 & ~folders.umask())
            os.replace(staged, self.root / name)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(staged)

    def read_stamps(self) -> dict[str, Any]:
        return self.read_note(VERIFIED)

    def save_stamps(self, stamps: dict[str, Any]) -> None:
        """Keep the stamps of files that still exist, best effort."""
        try:
            live = {n for n in self.names() if files.GENERATION_RE.match(n)}
            encoders = (
                set(os.listdir(self.root / ENCODERS))
                if files.is_dir(self.root / ENCODERS)
                else set()
            )
        except OSError:
            return
        kept = {
            k: v
            for k, v in stamps.items()
            if k.split("/")[0] in live
            or (k.startswith(f"{ENCODERS}/") and k.split("/")[1] in encoders)
        }
        self.save_note(VERIFIED, kept)

    def read_skipped(self) -> dict[str, Skipped]:
        """Files the last scan skipped for their bytes, by stat stamp (see corpus.scan)."""
        skipped: dict[str, Skipped] = {}
        for name, value in self.read_note(SKIPPED).items():
            # Known reasons only: the note is a file anyone who may write the index could
            # change, and its reason is shown to the user.
            if isinstance(value, list) and len(value) == 5 and known_reason(value[4]):
                with contextlib.suppress(TypeError, ValueError):
                    skipped[name] = (*(int(v) for v in value[:4]), str(value[4]))  # type: ignore[assignment]
        return skipped

    def save_skipped(self, skipped: dict[str, Skipped]) -> None:
        """Best effort, and only when the folder holds an index (a query over a corpus
        with no index yet creates nothing)."""
        if files.is_dir(self.root):
            self.save_note(SKIPPED, {name: list(value) for name, value in skipped.items()})

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
                and files.stat_stamps(cached[1].folder, cached[1].manifest.files) == cached[3]
            ):
                loaded = cached[1]
                self.notices.extend(n for n in cached[2] if n not in self.notices)
                break
            try:
                loaded = self._first_good(self.load_generation)
                if pointer is not None:
                    stamps = files.stat_stamps(loaded.folder, loaded.manifest.files)
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

    def load_generation(self, name: str, sha: str, *, full: bool = False) -> LoadedIndex:
        """Check and open one generation; ``full`` re-reads every checksum (see
        ``check_file``). Vectors are memory-mapped, not read: a query touches the pages
        it needs."""
        import faiss

        from diplosearch import ann

        manifest = self._manifest(name, sha)
        folder = self.root / name
        stamps = None if full else self.read_stamps()
        before = dict(stamps or {})
        for file in manifest.files:
            self.check_file(folder, file, manifest.files[file], stamps)
        if stamps is not None and stamps != before:
            self.save_stamps(stamps)
        rows = _load_array(folder / ROWS, "row table")
        try:
            index = faiss.read_index(
                str(folder / VECTORS), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
            )
        except Exception as exc:  # FAISS raises RuntimeError
            if denied(exc):
                raise AccessError(f"no permission to read {folder / VECTORS}") from exc
            raise IndexCorruptError(f"unreadable vectors {folder / VECTORS}: {exc}") from exc
        sentences = _load_array(folder / SENTENCES, "sentence vectors")
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
        try:
            size = (folder / CHUNKS).stat().st_size
        except OSError as exc:
            raise unreadable(folder / CHUNKS, exc, missing=True) from exc
        if (
            offsets[0] != 0
            or starts[0] != 0
            or offsets[-1] != size
            or (count and (np.diff(offsets).min() <= 0 or np.diff(starts).min() < 0))
        ):
            raise IndexCorruptError(f"{folder / ROWS} does not describe {folder / CHUNKS}")
        documents = _load_array(folder / DOCUMENTS, "document vectors")
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
        try:
            table = ChunkTable(folder / CHUNKS, offsets)
        except OSError as exc:
            raise unreadable(folder / CHUNKS, exc) from exc
        return LoadedIndex(
            manifest=manifest,
            chunks=table,
            faiss_index=index,
            folder=folder,
            sentence_vectors=sentences,
            sentence_start=starts,
            document_vectors=documents,
        )

    def encoder_damage(self, manifest: Manifest, *, full: bool = False) -> IndexCorruptError | None:
        """Why the query encoder ``manifest`` names differs from the files it lists, if it
        does (a file missing, damaged, or one too many). ``full`` hashes every file; else
        a file unchanged since its last check (stat stamp) is not read again."""
        folder = self.encoder_dir(manifest.encoder)
        stamps = None if full else self.read_stamps()
        before = dict(stamps or {})
        try:
            for name, entry in manifest.encoder_files.items():
                self.check_file(folder, name, entry, stamps)
            extra = sorted(  # hidden files (.DS_Store, ._model.onnx) are not the encoder's
                name
                for name in os.listdir(folder)
                if plain_name(name) and name not in manifest.encoder_files
            )
        except IndexCorruptError as exc:
            return IndexCorruptError(f"the query encoder is damaged: {exc}")
        except OSError as exc:
            raise unreadable(folder, exc) from exc
        if extra:
            return IndexCorruptError(
                f"the query encoder {folder} holds files its manifest does not list: "
                f"{', '.join(extra)}"
            )
        if stamps is not None and stamps != before:
            self.save_stamps(stamps)
        return None

    def names(self) -> list[str]:
        """The entries of the index folder (none if it does not exist); raises OSError."""
        try:
            return os.listdir(self.root)
        except FileNotFoundError:
            return []
