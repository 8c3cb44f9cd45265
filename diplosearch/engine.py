"""The engine: keep the index in step with the corpus, and answer queries from it.

Like llm's ``Collection``: the corpus folder is the truth, the index a cache of it. Before a
query the corpus is fingerprinted (SHA-256 per file) and compared with the manifest; if
anything changed, only the changed files are re-chunked and only never-seen chunk texts
are embedded. A query that finds the index fresh never loads torch.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from diplosearch import corpus
from diplosearch.cache import EmbeddingCache
from diplosearch.chunker import CHUNKER_VERSION, Chunk, Document, parse_document
from diplosearch.errors import (
    CorpusError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
)
from diplosearch.models import EmbeddingModel, Progress
from diplosearch.query import focus
from diplosearch.store import IndexStore, Manifest, SourceEntry, nearest


@dataclass(frozen=True)
class Changes:
    """How the corpus differs from what the index was built from."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    @classmethod
    def between(
        cls, indexed: dict[str, SourceEntry], current: dict[str, corpus.SourceFile]
    ) -> Changes:
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
class Status:
    manifest: Manifest | None
    #: Corpus changes since the build (``None`` when there is no usable index).
    changes: Changes | None
    #: Why the index cannot answer as it is (missing, other model, unreadable), if so.
    problem: str | None


@dataclass(frozen=True)
class RefreshReport:
    generation: str
    reason: str
    changes: Changes
    documents: int
    chunks: int
    #: Chunk texts that were embedded in this refresh (the rest came from the cache).
    embedded: int


@dataclass(frozen=True)
class SearchResult:
    rank: int
    score: float
    source: str
    title: str | None
    date: str | None
    paragraph: int
    lines: tuple[int, int]
    text: str
    section: str | None
    chunk_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 4),
            "source": self.source,
            "title": self.title,
            "date": self.date,
            "paragraph": self.paragraph,
            "lines": list(self.lines),
            "text": self.text,
            "section": self.section,
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

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "results": [r.to_json() for r in self.results]}


def encoder_key(model: EmbeddingModel) -> str:
    """Folder name of a model's query encoder: its name plus its weights' fingerprint."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model.name.split("/")[-1]).strip("-")
    return f"{slug}-{model.fingerprint()[:12]}"


class Engine:
    def __init__(
        self,
        seeds: Path,
        index: Path,
        model: EmbeddingModel | None = None,
    ) -> None:
        self.seeds = seeds
        self.store = IndexStore(index)
        self._model = model

    @property
    def model(self) -> EmbeddingModel:
        """The embedding model, created on first use (reading its config is not free)."""
        if self._model is None:
            from diplosearch.models import MiniLM

            self._model = MiniLM()
        return self._model

    # -- state ------------------------------------------------------------------------

    def _incompatibility(self, manifest: Manifest) -> str | None:
        model = self.model
        if manifest.model != model.name or manifest.dimension != model.dimension:
            return (
                f"index was built with {manifest.model} ({manifest.dimension}-d), "
                f"not {model.name} ({model.dimension}-d)"
            )
        if manifest.chunker_version != CHUNKER_VERSION:
            return f"index was chunked by chunker {manifest.chunker_version}, not {CHUNKER_VERSION}"
        return None

    def _scan(self) -> dict[str, corpus.SourceFile]:
        sources = corpus.scan(self.seeds)
        if not sources:
            raise CorpusError(f"no .txt or .md documents in {self.seeds}")
        return sources

    def _state(self, sources: dict[str, corpus.SourceFile]) -> Status:
        """The index against ``sources``; an unreadable index raises, it is not rebuilt over."""
        try:
            manifest = self.store.read_manifest()
        except IndexMissingError:
            return Status(manifest=None, changes=None, problem="no index yet")
        except IndexMismatchError as exc:
            return Status(manifest=None, changes=None, problem=str(exc))
        changes = Changes.between(manifest.sources, sources)
        return Status(manifest=manifest, changes=changes, problem=self._incompatibility(manifest))

    def status(self) -> Status:
        sources = self._scan()
        try:
            return self._state(sources)
        except IndexCorruptError as exc:
            return Status(manifest=None, changes=None, problem=str(exc))

    def _needs_refresh(self, sources: dict[str, corpus.SourceFile]) -> str | None:
        """Why the index must be (re)built for ``sources``, or ``None`` when it is fresh."""
        state = self._state(sources)
        if state.problem:
            return state.problem
        return "corpus changed" if state.changes else None

    # -- building -----------------------------------------------------------------------

    def refresh(
        self, *, rebuild: bool = False, progress: Progress | None = None
    ) -> RefreshReport | None:
        """Bring the index in step with the corpus; ``None`` if it already was.

        ``rebuild`` re-chunks every document (vectors still come from the cache).
        """
        if not rebuild and self._needs_refresh(self._scan()) is None:
            return None
        with self.store.writer_lock():
            sources = self._scan()  # again: the corpus may have moved while we waited
            reason = "rebuild requested" if rebuild else self._needs_refresh(sources)
            if reason is None:
                return None
            return self._build(sources, reason, reuse=not rebuild, progress=progress)

    def _previous(self) -> tuple[Manifest, dict[str, list[Chunk]]] | None:
        """The live generation's manifest and chunks by source, if they can be reused."""
        try:
            manifest = self.store.read_manifest()
            if self._incompatibility(manifest):
                return None
            by_source: dict[str, list[Chunk]] = {}
            for chunk in self.store.read_chunks(manifest):
                by_source.setdefault(chunk.source, []).append(chunk)
            return manifest, by_source
        except (IndexMissingError, IndexMismatchError, IndexCorruptError):
            return None

    def _build(
        self,
        sources: dict[str, corpus.SourceFile],
        reason: str,
        *,
        reuse: bool,
        progress: Progress | None,
    ) -> RefreshReport:
        model = self.model
        live = self._previous()
        changes = Changes.between(live[0].sources if live else {}, sources)
        previous = live if reuse else None
        indexed = previous[0].sources if previous else {}

        documents: dict[str, Document] = {}
        for name, source in sources.items():
            entry = indexed.get(name)
            if previous and entry and entry.sha256 == source.sha256:
                documents[name] = Document(
                    source=name,
                    title=entry.title,
                    date=entry.date,
                    chunks=tuple(previous[1].get(name, ())),
                )
            else:
                documents[name] = parse_document(
                    name, source.read_text(), model.count_tokens, model.max_tokens
                )
        chunks = [chunk for name in sorted(documents) for chunk in documents[name].chunks]

        key = encoder_key(model)
        with EmbeddingCache(self.store.cache_path, key, model.dimension) as cache:
            hashes = [chunk.text_sha256 for chunk in chunks]
            vectors = cache.get_many(hashes)
            todo = {h: c.text for h, c in zip(hashes, chunks, strict=False) if h not in vectors}
            if todo:
                fresh = model.embed(list(todo.values()), progress=progress)
                cache.put_many(zip(todo, fresh, strict=False))
                vectors.update(zip(todo, fresh, strict=False))
        matrix = (
            np.stack([vectors[h] for h in hashes])
            if hashes
            else np.zeros((0, model.dimension), np.float32)
        )
        model.ensure_query_encoder(self.store.encoder_dir(key))

        manifest = Manifest(
            model=model.name,
            model_fingerprint=model.fingerprint(),
            dimension=model.dimension,
            chunker_version=CHUNKER_VERSION,
            encoder=key,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            sources={
                name: SourceEntry(
                    sha256=sources[name].sha256,
                    size=sources[name].size,
                    title=doc.title,
                    date=doc.date,
                    chunks=len(doc.chunks),
                )
                for name, doc in sorted(documents.items())
            },
            chunks=len(chunks),
        )
        generation = self.store.write(manifest, chunks, matrix)
        return RefreshReport(
            generation=generation,
            reason=reason,
            changes=changes,
            documents=len(documents),
            chunks=len(chunks),
            embedded=len(todo),
        )

    # -- querying -----------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        refresh: bool = True,
        progress: Progress | None = None,
    ) -> SearchResponse:
        refreshed = self.refresh(progress=progress) if refresh else None
        stale = None if refresh else self.status().changes or None
        model = self.model
        loaded = self.store.load(model.name, model.dimension)
        encoder_dir = self.store.encoder_dir(loaded.manifest.encoder)
        model.ensure_query_encoder(encoder_dir)
        searched = focus(query)
        vector = model.embed_query(searched, encoder_dir)
        results = []
        for rank, (row, score) in enumerate(nearest(loaded.faiss_index, vector, k), start=1):
            chunk = loaded.chunks[row]
            entry = loaded.manifest.sources.get(chunk.source)
            results.append(
                SearchResult(
                    rank=rank,
                    score=score,
                    source=chunk.source,
                    title=entry.title if entry else None,
                    date=chunk.date,
                    paragraph=chunk.paragraph,
                    lines=(chunk.line_start, chunk.line_end),
                    text=chunk.text,
                    section=chunk.section,
                    chunk_id=chunk.id,
                )
            )
        return SearchResponse(
            query=query, searched=searched, results=results, refreshed=refreshed, stale=stale
        )
