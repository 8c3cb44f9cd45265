"""Writing the index: one writer at a time, each commit a whole new generation written
aside and switched to by an atomic replace of ``CURRENT``; damage set aside, never
deleted; the pointer repaired from the newest intact generations."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from diplosearch.chunks import Chunk
from diplosearch.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    IndexWriteError,
    denied,
)
from diplosearch.store import files
from diplosearch.store.files import DAMAGED, LOCK, LOCK_INTENT, LOCK_OWNER
from diplosearch.store.folders import staging_folder
from diplosearch.store.loaded import document_matrix
from diplosearch.store.reader import IndexReader
from diplosearch.store.records import (
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
    plain_name,
)


class IndexWriter:
    """Writes the index folder its ``reader`` reads."""

    def __init__(self, reader: IndexReader) -> None:
        self.reader = reader
        self.root = reader.root
        self.notices = reader.notices

    @contextlib.contextmanager
    def lock(
        self,
        timeout: float = 600,
        *,
        waiting: Callable[[str], None] | None = None,
    ) -> Iterator[float]:
        """One writer at a time: an OS lock (released if the process dies), plus a note
        of who holds it so that a second writer can say so. Yields the seconds waited.

        A writer that may wait (``timeout`` > 0: an explicit ``diplosearch index``) first
        takes a second lock, ``.lock.intent``, and holds it while it waits. A refreshing
        search (``timeout`` 0) takes that one at once or not at all, so while a build
        waits, searches stop taking the writer lock and answer from the live generation,
        and the build gets the lock as soon as the current writer is done (before, it
        lost it to refreshing searches almost every time). ``waiting`` is called once,
        with the holder, if the lock is not free at once."""
        from filelock import FileLock, Timeout

        started = time.monotonic()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            intent = FileLock(str(self.root / LOCK_INTENT))
            lock = FileLock(str(self.root / LOCK))
            told = False
            try:
                intent.acquire(timeout=0)
            except Timeout as exc:
                if timeout <= 0:
                    raise IndexLockedError(
                        f"another process is about to write {self.root}"
                    ) from exc
                if waiting is not None:  # another explicit build waits before us
                    waiting(self.lock_owner())
                    told = True
                intent.acquire(timeout=timeout)
            try:
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    if waiting is not None and timeout > 0 and not told:
                        waiting(self.lock_owner())
                    left = max(0.0, timeout - (time.monotonic() - started))
                    lock.acquire(timeout=left)
            finally:
                intent.release()
        except Timeout as exc:  # before OSError: filelock's Timeout is a TimeoutError
            raise IndexLockedError(f"{self.root} is being written by {self.lock_owner()}") from exc
        except OSError as exc:  # not writable, a folder where the lock file goes, ...
            raise IndexWriteError.during_build(self.root / LOCK, exc) from exc
        waited = time.monotonic() - started
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
            yield waited
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

    def encoder_files(self, key: str) -> dict[str, FileEntry]:
        """SHA-256 and size of every file of the query encoder ``key``, for the manifest;
        stamped as checked, so the first query does not hash them again. Hidden files
        (``.DS_Store``, ``._model.onnx``, ``.nfs…``) are not the encoder's: not listed, as
        the manifest lists plain names only. A file whose stat stamp is the one recorded
        when it was last hashed is not hashed again."""
        folder = self.reader.encoder_dir(key)
        stamps = self.reader.read_stamps()
        entries: dict[str, FileEntry] = {}
        for path in sorted(folder.iterdir()):
            if not plain_name(path.name):
                continue
            info = path.stat()
            where = path.relative_to(self.root).as_posix()
            known = stamps.get(where)
            if isinstance(known, list) and known[:-1] == files.verified(info, "")[:-1]:
                sha256 = str(known[-1])
            else:
                sha256 = files.file_sha256(path)
            entries[path.name] = FileEntry(sha256=sha256, size=info.st_size)
            stamps[where] = files.verified(info, sha256)
        self.reader.save_stamps(stamps)
        return entries

    def discard_encoder(self, key: str) -> None:
        """Remove a damaged query encoder, to be exported again: it is derived from the
        model package, so there is nothing in it to inspect. Renamed first, so no reader
        sees it half removed."""
        folder = self.reader.encoder_dir(key)
        doomed = staging_folder(f".{key}-damaged-", folder.parent)
        doomed.rmdir()
        folder.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)

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
        existing = [files.number(n) for n in self.reader.names()]
        name = f"gen-{max(existing, default=0) + 1:06d}"
        tmp = staging_folder(f".tmp-{name}-", self.root)
        try:
            index = ann.build(manifest.index_type, vectors, manifest.dimension)
            files.write_file(tmp / VECTORS, faiss.serialize_index(index).tobytes())
            del index
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(sentence_vectors, dtype=np.float32))
            files.write_file(tmp / SENTENCES, buffer.getvalue())
            buffer = io.BytesIO()
            np.save(buffer, document_matrix(manifest, chunks, vectors))
            files.write_file(tmp / DOCUMENTS, buffer.getvalue())
            rows = [
                (json.dumps(chunk_to_row(c), ensure_ascii=False) + "\n").encode("utf-8")
                for c in chunks
            ]
            table = np.zeros((len(chunks) + 1, 2), dtype=np.int64)
            table[1:, 0] = np.cumsum([len(r) for r in rows], dtype=np.int64)
            table[1:, 1] = np.cumsum([len(c.vector_spans) for c in chunks], dtype=np.int64)
            if table[-1, 1] != len(sentence_vectors):
                raise ValueError("sentence vectors and chunk sentences differ")
            files.write_file(tmp / CHUNKS, b"".join(rows))
            del rows
            buffer = io.BytesIO()
            np.save(buffer, table)
            files.write_file(tmp / ROWS, buffer.getvalue())
            titles = {name: entry.title or "" for name, entry in manifest.sources.items()}
            languages = {name: entry.language for name, entry in manifest.sources.items()}
            lexical.write(
                tmp / LEXICAL,
                [c.text for c in chunks],
                [f"{titles.get(c.source, '')}\n{c.section or ''}" for c in chunks],
                [languages.get(c.source) for c in chunks],
            )
            names = [*DATA_FILES, *(f"{LEXICAL}/{p.name}" for p in (tmp / LEXICAL).iterdir())]
            files.fsync(tmp / LEXICAL)
            entries: dict[str, FileEntry] = {}
            stamps = self.reader.read_stamps()
            for f in sorted(names):  # stamped as checked: the first query need not hash again
                files.fsync(tmp / f)
                info = (tmp / f).stat()
                entries[f] = FileEntry(sha256=files.file_sha256(tmp / f), size=info.st_size)
                stamps[f"{name}/{f}"] = files.verified(info, entries[f].sha256)
            text = replace(manifest, files=entries).to_json().encode("utf-8")
            try:  # never commit a manifest the reader would refuse
                Manifest.from_json(text.decode("utf-8"), name)
            except IndexCorruptError as exc:
                raise IndexWriteError(f"the new generation's manifest is not valid: {exc}") from exc
            files.write_file(tmp / MANIFEST, text)
            files.fsync(tmp)
            files.step("files-written")
            tmp.rename(self.root / name)
            files.fsync(self.root)
            files.step("generation-renamed")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        pointer = Pointer(live=(name, _sha256(text)), previous=previous)
        staged = self.root / f".{CURRENT}.tmp"
        files.write_file(staged, pointer.to_text().encode("utf-8"))
        files.step("pointer-written")
        os.replace(staged, self.root / CURRENT)
        files.fsync(self.root)
        files.step("pointer-replaced")
        self._prune(keep={name, *([previous[0]] if previous else [])})
        self.reader.save_stamps(stamps)
        return name

    def _last_good(self) -> tuple[str, str] | None:
        """The generation to keep as the fallback of the next commit: the live one if it
        passes every check, else the previous one if that does. A generation that fails
        is set aside (renamed ``damaged-…``), never deleted, and a notice says where."""
        try:
            candidates = self.reader.candidates()
        except (IndexMissingError, IndexCorruptError, IndexMismatchError):
            return None
        for name, sha in candidates:
            try:
                try:
                    self.reader.load_generation(name, sha)
                except IndexCorruptError:
                    # Read again before setting anything aside: a read that failed once
                    # (an I/O error that passed) is not damage.
                    self.reader.load_generation(name, sha, full=True)
                return name, sha
            except IndexMismatchError:
                continue  # an older format: not ours to keep as a fallback
            except IndexCorruptError as exc:
                if files.is_dir(self.root / name):
                    where = self.quarantine(name)
                    self.notices.append(f"{exc}; the damaged generation is kept as {where.name}")
        return None

    def repair_pointer(self, damage: IndexCorruptError) -> str:
        """After ``CURRENT`` failed its checks: set it aside (renamed, never deleted) and
        point at the newest generations that pass every check, as Lucene falls back to
        the newest readable commit. Returns what was done, for the user. Call with the
        writer lock held."""
        intact: list[tuple[str, str]] = []
        for name in sorted(
            (n for n in self.reader.names() if files.GENERATION_RE.match(n)), reverse=True
        ):
            try:  # an AccessError stops here, before anything is moved
                sha = _sha256((self.root / name / MANIFEST).read_bytes())
                self.reader.load_generation(name, sha, full=True)
            except OSError as exc:
                if denied(exc):
                    raise
                continue
            except (IndexCorruptError, IndexMismatchError):
                continue
            intact.append((name, sha))
            if len(intact) == 2:
                break
        where = self.quarantine(CURRENT)
        if not intact:
            return f"{damage}; set aside as {where.name}, and no generation is intact"
        pointer = Pointer(live=intact[0], previous=intact[1] if len(intact) > 1 else None)
        staged = self.root / f".{CURRENT}.tmp"
        files.write_file(staged, pointer.to_text().encode("utf-8"))
        os.replace(staged, self.root / CURRENT)
        files.fsync(self.root)
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

    def _prune(self, keep: set[str]) -> None:
        """Drop generations but the live one and its fallback, and dead temporaries; set
        aside (``damaged-``) generations stay until the user removes them. Best effort:
        the commit is done, and what is left here the next build removes."""
        try:
            names = self.reader.names()
        except OSError:
            return
        for entry in names:
            if (files.GENERATION_RE.match(entry) and entry not in keep) or entry.startswith(
                ".tmp-"
            ):
                shutil.rmtree(self.root / entry, ignore_errors=True)
