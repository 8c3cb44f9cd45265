"""What a search returns: ranked passages with their citations, and the response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diplosearch.ingest.corpus import SourceFile
    from diplosearch.store.records import SourceEntry


@dataclass(frozen=True)
class Changes:
    """How the corpus differs from what the index was built from."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    @classmethod
    def between(cls, indexed: dict[str, SourceEntry], current: dict[str, SourceFile]) -> Changes:
        return cls(
            added=tuple(sorted(set(current) - set(indexed))),
            changed=tuple(
                sorted(
                    n for n in current if n in indexed and indexed[n].sha256 != current[n].sha256
                )
            ),
            removed=tuple(sorted(set(indexed) - set(current))),
        )


@dataclass(frozen=True)
class RefreshReport:
    generation: str
    reason: str
    changes: Changes
    documents: int
    chunks: int
    #: Chunk texts that were embedded in this refresh (the rest came from the cache).
    embedded: int
    #: Sentences of multi-sentence chunks embedded for highlighting, likewise.
    embedded_sentences: int = 0
    #: Seconds spent waiting for another writer before building.
    waited: float = 0.0


def page_json(pages: tuple[int, int] | None) -> int | list[int] | None:
    """A citation's ``page`` in JSON: the page, or ``[first, last]`` across a break."""
    if pages is None:
        return None
    return pages[0] if pages[0] == pages[1] else list(pages)


@dataclass(frozen=True)
class Citation:
    """Where a passage is: where else a collapsed near-duplicate appears, or a passage
    of ``show``. ``lines`` are the file's lines (text and Markdown only), ``page`` a
    PDF's (first, last) page, ``url`` a web page's address."""

    source: str
    paragraph: int
    lines: tuple[int, int] | None
    date: str | None
    text: str = ""
    page: tuple[int, int] | None = None
    url: str | None = None
    format: str = "text"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "paragraph": self.paragraph,
            "lines": list(self.lines) if self.lines else None,
            "page": page_json(self.page),
            "url": self.url,
            "format": self.format,
            "date": self.date,
        }


@dataclass(frozen=True)
class SearchResult:
    rank: int
    score: float
    source: str
    title: str | None
    date: str | None
    paragraph: int
    #: The file's lines (text and Markdown; ``None`` for other formats).
    lines: tuple[int, int] | None
    text: str
    section: str | None
    chunk_id: str
    speakers: tuple[str, ...] = ()
    #: Character offsets in ``text`` of the sentence that best matches the query.
    highlight: tuple[int, int] = (0, 0)
    also_in: tuple[Citation, ...] = ()
    #: A PDF's (first, last) page; a web page's canonical URL; how the file was read.
    page: tuple[int, int] | None = None
    url: str | None = None
    format: str = "text"

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 4),
            "source": self.source,
            "title": self.title,
            "date": self.date,
            "paragraph": self.paragraph,
            "lines": list(self.lines) if self.lines else None,
            "page": page_json(self.page),
            "url": self.url,
            "format": self.format,
            "text": self.text,
            "section": self.section,
            "speakers": list(self.speakers),
            "highlight": list(self.highlight),
            "also_in": [c.to_json() for c in self.also_in],
            "chunk_id": self.chunk_id,
        }


@dataclass(frozen=True)
class SearchResponse:
    query: str
    #: What was embedded: the query less any impersonal question frame (see query.py).
    searched: str
    results: list[SearchResult]
    refreshed: RefreshReport | None
    #: Set when refreshing was turned off and the corpus changed since the build.
    stale: Changes | None
    #: Warnings for the user: a damaged generation passed over, a rebuild still running.
    warnings: tuple[str, ...] = ()

    def to_json(self, results: list[SearchResult] | None = None) -> dict[str, Any]:
        """The JSON contract; ``results`` to give them in another order (a timeline)."""
        chosen = self.results if results is None else results
        return {"query": self.query, "results": [r.to_json() for r in chosen]}


@dataclass(frozen=True)
class Context:
    """A passage with the paragraphs around it, for reading around a result (``show``)."""

    source: str
    title: str | None
    #: The paragraph asked for; ``passages`` holds it and its neighbours, in order (a
    #: long paragraph is several passages).
    paragraph: int
    passages: tuple[Citation, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "title": self.title,
            "paragraph": self.paragraph,
            "passages": [
                {**c.to_json(), "text": c.text, "asked": c.paragraph == self.paragraph}
                for c in self.passages
            ],
        }
