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
    embeddings.sqlite       embedding cache (see store/cache.py)
    extractions.sqlite      text extracted from PDFs, web pages, Word files (store/cache.py)
    .verified.json          stat stamps of files whose checksums passed (see check_file)
    .skipped.json           stat stamps of corpus files skipped as binary (see corpus.scan)
    encoders/<model>/       ONNX query encoder (see encoder.py)
    .lock, .lock.owner      held by the one process writing, and who that is
    .lock.intent            held by an explicit build while it waits for .lock

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

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from diplosearch.chunks import Chunk
from diplosearch.errors import IndexCorruptError
from diplosearch.store.checker import IndexChecker
from diplosearch.store.files import (
    CACHE,
    COMMIT_STEPS,
    CRASH_ENV,
    DAMAGED,
    ENCODERS,
    LOCK,
    LOCK_INTENT,
    LOCK_OWNER,
    SKIPPED,
    VERIFIED,
)
from diplosearch.store.loaded import ChunkTable, LoadedIndex, document_matrix, nearest
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
)
from diplosearch.store.writer import IndexWriter

__all__ = [
    "CACHE", "CHUNKS", "COMMIT_STEPS", "CRASH_ENV", "CURRENT", "DAMAGED", "DATA_FILES",
    "DOCUMENTS", "ENCODERS", "LEXICAL", "LOCK", "LOCK_INTENT", "LOCK_OWNER", "MANIFEST",
    "ROWS", "SENTENCES", "SKIPPED", "VECTORS", "VERIFIED", "ChunkTable", "FileEntry",
    "IndexChecker", "IndexReader", "IndexStore", "IndexWriter", "LoadedIndex", "Manifest",
    "Pointer", "document_matrix", "nearest",
]  # fmt: skip


class IndexStore(IndexReader):
    """One index folder: read by this class (an :class:`IndexReader`), written by its
    :class:`IndexWriter`, checked by its :class:`IndexChecker`, as Lucene keeps its
    reader, writer and CheckIndex apart. The three share the root, the notices and the
    parsed manifests."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writer = IndexWriter(self)
        self.checker = IndexChecker(self)

    def writer_lock(
        self, timeout: float = 600, *, waiting: Callable[[str], None] | None = None
    ) -> AbstractContextManager[float]:
        """See :meth:`IndexWriter.lock`."""
        return self.writer.lock(timeout, waiting=waiting)

    def lock_owner(self) -> str:
        return self.writer.lock_owner()

    def write(
        self,
        manifest: Manifest,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        sentence_vectors: np.ndarray,
    ) -> str:
        """See :meth:`IndexWriter.write`."""
        return self.writer.write(manifest, chunks, vectors, sentence_vectors)

    def repair_pointer(self, damage: IndexCorruptError) -> str:
        return self.writer.repair_pointer(damage)

    def quarantine(self, name: str) -> Path:
        return self.writer.quarantine(name)

    def encoder_files(self, key: str) -> dict[str, FileEntry]:
        return self.writer.encoder_files(key)

    def discard_encoder(self, key: str) -> None:
        self.writer.discard_encoder(key)

    def verify(self) -> tuple[list[str], list[str]]:
        """See :meth:`IndexChecker.verify`."""
        return self.checker.verify()
