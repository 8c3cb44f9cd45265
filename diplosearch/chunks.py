"""What the chunker produces and the index stores: passages with their citations.

Kept apart from the chunker so that answering a query never loads the parsing rules.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: Bump when the rules of chunker.py (or speakers.py) change, so indexes are re-chunked.
CHUNKER_VERSION = "6"


@dataclass(frozen=True)
class Chunk:
    """One indexed passage and its citation."""

    source: str
    paragraph: int
    part: int
    parts: int
    line_start: int
    line_end: int
    section: str | None
    date: str | None
    text: str
    #: Who is reported speaking in this passage, as named in this document (see speakers.py).
    speakers: tuple[str, ...] = ()
    #: Sentence spans in ``text``: what a result highlights (embedded at build time).
    sentences: tuple[tuple[int, int], ...] = ()
    #: (first, last) page of a PDF the passage is printed on; ``None`` for other formats.
    pages: tuple[int, int] | None = None

    @property
    def vector_spans(self) -> tuple[tuple[int, int], ...]:
        """The sentences that get vectors of their own: none when the chunk is one sentence
        (its own vector serves)."""
        return self.sentences if len(self.sentences) > 1 else ()

    @property
    def sentence_texts(self) -> list[str]:
        """The texts of :attr:`vector_spans`."""
        return [self.text[start:end] for start, end in self.vector_spans]

    @property
    def id(self) -> str:
        """Stable id: same source, position and text give the same id in every build."""
        key = f"{self.source}\0{self.paragraph}\0{self.part}\0{self.text}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Document:
    source: str
    title: str | None
    date: str | None
    chunks: tuple[Chunk, ...]
    #: How the file was read (ingest/formats), its language and canonical URL.
    format: str = "text"
    language: str | None = None
    url: str | None = None
