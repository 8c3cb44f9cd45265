"""A generation as loaded for queries: its chunk table, vectors, sentence and document
vectors, and BM25 index, opened without reading what a query does not touch."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from diplosearch.chunks import Chunk
from diplosearch.errors import AccessError, IndexCorruptError, denied
from diplosearch.store.records import LEXICAL, ROWS, Manifest, row_to_chunk


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

    def _check_sentences(self, row: int, count: int) -> None:
        """The row table's count of sentence vectors for ``row`` against its chunk's."""
        expected = len(self.chunks[row].vector_spans)
        if count != expected:
            raise IndexCorruptError(
                f"{self.folder / ROWS} gives row {row} {count} sentence vectors, "
                f"its chunk has {expected} sentences"
            )

    def sentence_vectors_of(self, row: int) -> np.ndarray:
        start, end = int(self.sentence_start[row]), int(self.sentence_start[row + 1])
        self._check_sentences(row, end - start)
        return np.asarray(self.sentence_vectors[start:end], dtype=np.float32)

    def best_sentence_cosines(self, rows: Sequence[int], vector: np.ndarray) -> np.ndarray:
        """For each of ``rows``, the best cosine of its sentence vectors with ``vector``
        (-1 for a row without any): one gather and one product for all rows."""
        index = np.asarray(rows, dtype=np.int64)
        starts = self.sentence_start[index].astype(np.int64)
        counts = self.sentence_start[index + 1].astype(np.int64) - starts
        for row, count in zip(rows, counts.tolist(), strict=True):
            self._check_sentences(row, count)
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

    def lexical(self) -> Any:
        """The BM25 index of this generation, checked against the chunk count; opened once
        and kept open with the rest of the generation."""
        from diplosearch.lexical import LexicalIndex

        if self._lexical is not None:
            return self._lexical
        path = self.folder / LEXICAL
        try:
            index = LexicalIndex(
                path,
                self.manifest.acronyms,
                {entry.language for entry in self.manifest.sources.values()},
            )
            count = index.count()
        except OSError as exc:
            if denied(exc):
                raise AccessError(f"no permission to read the lexical index {path}") from exc
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
