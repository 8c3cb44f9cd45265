"""The engine: keep the index in step with the corpus, and answer queries from it.

Like llm's ``Collection``: the corpus folder is the truth, the index a cache of it. Before a
query the corpus is fingerprinted (SHA-256 per file) and compared with the manifest; if
anything changed, only the changed files are re-chunked and only never-seen chunk texts
are embedded. A query that finds the index fresh never loads torch.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from diplosearch import ranking
from diplosearch.chunks import CHUNKER_VERSION, Chunk, Document
from diplosearch.errors import (
    AccessError,
    CorpusError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    IndexWriteError,
    ModelError,
    QueryError,
)
from diplosearch.filters import Filters, speakers_of
from diplosearch.fusion import collapse
from diplosearch.highlight import best_sentence
from diplosearch.ingest import corpus
from diplosearch.ingest.extractor import Extractor
from diplosearch.ingest.formats import LINED, ExtractionError
from diplosearch.lexical import ParsedQuery, parse_query
from diplosearch.models import EmbeddingModel, Progress
from diplosearch.query import clean, focus
from diplosearch.results import (
    Changes,
    Citation,
    Context,
    RefreshReport,
    SearchResponse,
    SearchResult,
)
from diplosearch.store import IndexStore, LoadedIndex
from diplosearch.store.cache import EmbeddingCache, text_key
from diplosearch.store.records import FileEntry, Manifest, SourceEntry


@dataclass(frozen=True)
class Status:
    manifest: Manifest | None
    #: Corpus changes since the build (``None`` when there is no usable index).
    changes: Changes | None
    #: Why the index cannot answer as it is (missing, other model, unreadable), if so.
    problem: str | None
    #: Warnings met on the way (a damaged generation passed over).
    warnings: tuple[str, ...] = ()
    #: What the user should know about what the index can do (documents in languages
    #: the model does not read).
    notes: tuple[str, ...] = ()


MODES = ("dense", "lexical", "hybrid")
#: Longest query accepted: far beyond any question, and the embedding window is 256 word
#: pieces anyway; longer input is refused rather than silently cut.
MAX_QUERY_CHARS = 2000
#: Most passages one search returns.
MAX_RESULTS = 1000


#: What a cache entry holds: the passage's vector, then its sentences' (late chunking).
CACHE_LAYOUT = "late1"


def encoder_key(model: EmbeddingModel) -> str:
    """Folder name of a model's query encoder: its name plus its weights' fingerprint."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model.name.split("/")[-1]).strip("-.")
    return f"{slug or 'model'}-{model.fingerprint()[:12]}"


def language_notes(manifest: Manifest) -> tuple[str, ...]:
    """A note when documents are in languages the index's model does not read: the
    shipped model is English-only, so dense search cannot match them across languages
    (lexical search still finds their words, analysed in their language)."""
    from diplosearch.ingest.language import name
    from diplosearch.models import DEFAULT_MODEL

    if manifest.model != DEFAULT_MODEL:
        return ()
    others = {k: v for k, v in manifest.count_by("language").items() if k not in ("en", "unknown")}
    if not others:
        return ()
    n = sum(others.values())
    listed = ", ".join(f"{name(code)} {count}" for code, count in others.items())
    return (
        f"{n} document{'s are' if n != 1 else ' is'} not in English ({listed}); the model "
        f"{DEFAULT_MODEL} reads English only, so meaning-based (dense) search cannot match "
        "them to English questions, while lexical search finds their own words. To search "
        "across languages, index with a multilingual model: diplosearch index --model PATH "
        "(docs/models.md)",
    )


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
        self._notices: list[str] = []
        #: What the last scan skipped for its bytes (see corpus.scan), kept between scans.
        self._skipped: dict[str, corpus.Skipped] | None = None

    @property
    def model(self) -> EmbeddingModel:
        """The embedding model, created on first use (reading its config is not free):
        unless one was given, the one the live index was built with."""
        if self._model is None:
            self._model = self.recorded_model()
        return self._model

    def recorded_model(self, backend: str = "torch") -> EmbeddingModel:
        """The model the manifest names (``index --model PATH`` records its folder's
        absolute path), or the shipped one when there is no readable index: queries must
        be embedded by the model that embedded the passages, and a refresh keeps it, as
        it keeps the index type. Reads the manifest a query reads anyway (it is cached)."""
        from diplosearch.models import MiniLM

        name = None
        for _ in range(2):  # read again: an I/O error once is not damage (nor a new model)
            try:
                name = self.store.read_manifest().model
                break
            except IndexCorruptError:
                continue  # twice: no generation is readable, and a build starts afresh
            except (IndexMissingError, IndexMismatchError):
                break  # no index (of this format) yet
        if name is None or not Path(name).is_absolute():  # the shipped model's hub id
            return MiniLM(backend=backend)
        try:
            return MiniLM(Path(name), backend=backend)
        except ModelError as exc:
            raise ModelError(
                f"{exc}, and the index was built with it; `diplosearch index --model PATH` "
                "rebuilds the index with a model folder, `diplosearch index --model default` "
                "with the shipped model"
            ) from exc

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

    @property
    def notices(self) -> list[str]:
        """Warnings met so far (files skipped, damage passed over), each once, in order."""
        return list(dict.fromkeys([*self._notices, *self.store.notices]))

    def _scan(self, *, retry: bool = False) -> dict[str, corpus.SourceFile]:
        try:
            known: dict[str, SourceEntry] = self.store.read_manifest().sources
        except (IndexMissingError, IndexMismatchError, IndexCorruptError):
            known = {}
        stored = self.store.read_skipped()
        remembered = {} if retry else stored if self._skipped is None else self._skipped
        found = corpus.scan(self.seeds, known, remembered)
        if found.skipped != stored:
            self.store.save_skipped(found.skipped)
        self._skipped = found.skipped
        self._notices.extend(found.warnings)
        if not found.sources:
            raise CorpusError(f"no documents in {self.seeds} ({corpus.SUPPORTED})")
        return found.sources

    def _state(self, sources: dict[str, corpus.SourceFile]) -> Status:
        """The index against ``sources``; an unreadable index raises, it is not rebuilt over."""
        try:
            manifest = self.store.read_manifest()
        except IndexMissingError:
            return Status(manifest=None, changes=None, problem="no index yet")
        except IndexMismatchError as exc:
            return Status(manifest=None, changes=None, problem=str(exc))
        changes = Changes.between(manifest.sources, sources)
        problem = self._incompatibility(manifest)
        if problem is None and (damage := self.store.encoder_damage(manifest)) is not None:
            problem = str(damage)
        return Status(manifest=manifest, changes=changes, problem=problem)

    def status(self) -> Status:
        sources = self._scan()
        try:
            state = self._state(sources)
        except IndexCorruptError as exc:
            state = Status(manifest=None, changes=None, problem=str(exc))
        notes = language_notes(state.manifest) if state.manifest else ()
        return replace(state, warnings=tuple(self.notices), notes=notes)

    def _needs_refresh(self, sources: dict[str, corpus.SourceFile]) -> str | None:
        """Why the index must be (re)built for ``sources``, or ``None`` when it is fresh."""
        state = self._state(sources)
        if state.problem:
            return state.problem
        return "corpus changed" if state.changes else None

    # -- building -----------------------------------------------------------------------

    def refresh(
        self,
        *,
        rebuild: bool = False,
        heal: bool = False,
        wait: float = 600,
        progress: Progress | None = None,
        index_type: str | None = None,
        waiting: Callable[[str], None] | None = None,
    ) -> RefreshReport | None:
        """Bring the index in step with the corpus; ``None`` if it already was.

        ``index_type`` (see ann.py) is kept by later refreshes; a different one rebuilds.

        ``rebuild`` re-chunks every document (vectors still come from the cache); ``heal``
        also checks every file of the live generation and rebuilds if one is damaged (the
        damaged generation is set aside, not deleted). ``wait`` is how long to wait for
        another writer before :class:`IndexLockedError`; while a refresh waits, searches
        do not take the lock (see IndexStore.writer_lock), and ``waiting`` is told who
        holds it. The report says how long it waited.
        """
        if (
            not rebuild
            and not heal
            and index_type is None
            and self._needs_refresh(self._scan()) is None
        ):
            return None
        with self.store.writer_lock(timeout=wait, waiting=waiting) as waited:
            try:
                report = self._refresh_locked(rebuild, heal, progress, index_type)
            except (OSError, sqlite3.Error) as exc:  # the cache, the encoder, the folder
                raise IndexWriteError.during_build(self.store.root, exc) from exc
        return replace(report, waited=waited) if report is not None else None

    def _refresh_locked(
        self, rebuild: bool, heal: bool, progress: Progress | None, index_type: str | None
    ) -> RefreshReport | None:
        """:meth:`refresh`'s work, with the writer lock held."""
        if heal:
            try:
                self.store.pointer()
            except IndexCorruptError:
                try:  # read again: a read that failed once (an I/O error) is not damage
                    self.store.pointer()
                except IndexCorruptError as exc:
                    self._notices.append(self.store.repair_pointer(exc))
        # Again: the corpus may have moved while we waited. A rebuild reads again the
        # files skipped for their content (a newer extractor may read them).
        sources = self._scan(retry=rebuild)
        try:
            reason = "rebuild requested" if rebuild else self._needs_refresh(sources)
        except IndexCorruptError as exc:
            if not heal:
                raise
            reason = str(exc)  # no generation is readable: they are set aside below
        live_request = self._index_request()
        request = index_type or live_request
        if reason is None and request != live_request:
            reason = f"index type {request} requested"
        damage = self.store.live_is_damaged() if heal and reason is None else None
        if damage is not None:
            reason = f"the live generation is damaged ({damage})"
        if reason is None:
            return None
        return self._build(
            sources, reason, reuse=not rebuild, progress=progress, request=request, full=heal
        )

    def _index_request(self) -> str:
        """The index type the live generation was asked to be (``auto`` if none)."""
        try:
            return self.store.read_manifest().index_request
        except (IndexMissingError, IndexMismatchError, IndexCorruptError):
            return "auto"

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

    def _skip(self, source: corpus.SourceFile, reason: str) -> None:
        """Leave out a file that cannot be read as its format, with one warning, and
        remember it by stat stamp so that later scans name it without reading it."""
        self._notices.append(f"skipping {source.relpath}: {reason}")
        if self._skipped is None:
            self._skipped = {}
        stamp = source.stamp
        if stamp is None:
            # Changed too recently for its stamp to be trusted as unchanged text; a file
            # that cannot be read as its format is remembered all the same (status must
            # name it), and a rewrite moves its ctime.
            try:
                stamp = corpus.stat_stamp(os.stat(source.location))
            except OSError:
                return
        if corpus.known_reason(reason):
            self._skipped[source.relpath] = (*stamp, reason)
            self.store.save_skipped(self._skipped)

    def _export_encoder(self, key: str, *, full: bool) -> dict[str, FileEntry]:
        """Make sure the query encoder ``key`` is whole (one the live manifest lists and
        that fails its checksums is removed and exported again) and return its files for
        the new manifest. ``full`` hashes every file, not only those whose stat changed."""
        folder = self.store.encoder_dir(key)
        try:
            recorded: Manifest | None = self.store.read_manifest()
        except (IndexMissingError, IndexMismatchError, IndexCorruptError):
            recorded = None
        if folder.exists():
            if recorded is None or recorded.encoder != key:
                # No manifest vouches for these files (a first build over an older
                # index, a lost CURRENT): export afresh rather than take them on trust.
                self.store.discard_encoder(key)
            elif (damage := self.store.encoder_damage(recorded, full=full)) is not None:
                self.store.discard_encoder(key)
                self._notices.append(f"{damage}; it is exported again")
        self.model.ensure_query_encoder(folder)
        return self.store.encoder_files(key)

    def _build(
        self,
        sources: dict[str, corpus.SourceFile],
        reason: str,
        *,
        reuse: bool,
        progress: Progress | None,
        request: str = "auto",
        full: bool = False,
    ) -> RefreshReport:
        from diplosearch import acronyms, ann
        from diplosearch.ingest import speakers
        from diplosearch.ingest.chunker import parse_document

        model = self.model
        live = self._previous()
        changes = Changes.between(live[0].sources if live else {}, sources)
        previous = live if reuse else None
        indexed = previous[0].sources if previous else {}

        documents: dict[str, Document] = {}
        kept = {
            name
            for name, source in sources.items()
            if previous and name in indexed and indexed[name].sha256 == source.sha256
        }
        extractor = Extractor(self.store.extractions_path)
        with extractor, ThreadPoolExecutor(max_workers=1) as pool:
            # A document to chunk may bring text never embedded: load the network (seconds
            # of imports, much of it native) on a second thread while chunking runs here.
            loading = pool.submit(model.warm_up) if len(kept) < len(sources) else None
            for name, source in list(sources.items()):  # as read: an entry may change
                if name in kept:
                    entry = indexed[name]
                    documents[name] = Document(
                        source=name,
                        title=entry.title,
                        date=entry.date,
                        chunks=tuple(previous[1].get(name, ())) if previous else (),
                        format=entry.format,
                        language=entry.language,
                        url=entry.url,
                    )
                    continue
                try:
                    data, warnings, sources[name] = source.read_bytes()
                except corpus.SourceChanged as exc:
                    self._notices.append(f"skipping {exc}; it is read afresh next time")
                    del sources[name]
                    continue
                self._notices.extend(warnings)
                try:
                    extracted = extractor.extract(name, data, sources[name].sha256)
                except ExtractionError as exc:
                    self._skip(sources.pop(name), str(exc))
                    continue
                self._notices.extend(f"{name}: {w}" for w in extracted.warnings)
                documents[name] = parse_document(
                    name, extracted, model.count_tokens, model.max_tokens
                )
            if loading is not None:
                loading.result()
            self._notices.extend(extractor.notices)
        chunks = [chunk for name in sorted(documents) for chunk in documents[name].chunks]

        key = encoder_key(model)
        encoder_dir = self.store.encoder_dir(key)
        encoder_files = self._export_encoder(key, full=full)
        hashes = [text_key(c.text) for c in chunks]
        spans = [c.vector_spans for c in chunks]
        cache_key = f"{key}+{CACHE_LAYOUT}"
        with EmbeddingCache(self.store.cache_path, cache_key, model.dimension) as cache:
            found = cache.get_many(hashes)
            rows = {
                h: found[h]
                for h, s in zip(hashes, spans, strict=True)
                if h in found and len(found[h]) == 1 + len(s)
            }
            todo = {h: i for i, h in enumerate(hashes) if h not in rows}
            if todo:
                order = list(todo.values())
                fresh = model.embed_passages(
                    [chunks[i].text for i in order],
                    [spans[i] for i in order],
                    encoder_dir,
                    progress,
                )
                cache.put_many(zip(todo, fresh, strict=True))
                rows.update(zip(todo, fresh, strict=True))
            self._notices.extend(cache.notices)
        empty = np.zeros((0, model.dimension), np.float32)
        matrix = np.stack([rows[h][0] for h in hashes]) if hashes else empty
        parts = [rows[h][1:] for h in hashes if len(rows[h]) > 1]
        sentence_matrix = np.concatenate(parts) if parts else empty

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
                    stamp=sources[name].stamp,
                    format=doc.format,
                    language=doc.language,
                    url=doc.url,
                )
                for name, doc in sorted(documents.items())
            },
            chunks=len(chunks),
            undated=sum(chunk.date is None for chunk in chunks),
            speakers=speakers.canonical_names(n for chunk in chunks for n in chunk.speakers),
            index_type=ann.resolve(request, len(chunks)),
            index_request=request,
            acronyms=acronyms.definitions(c.text for c in chunks),
            encoder_files=encoder_files,
        )
        generation = self.store.write(manifest, chunks, matrix, sentence_matrix)
        return RefreshReport(
            generation=generation,
            reason=reason,
            changes=changes,
            documents=len(documents),
            chunks=len(chunks),
            embedded=len(todo),
            embedded_sentences=sum(len(spans[i]) for i in todo.values()),
        )

    # -- querying -----------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str = "hybrid",
        filters: Filters | None = None,
        refresh: bool | None = True,
        progress: Progress | None = None,
        everything: bool = False,
    ) -> SearchResponse:
        """The ``k`` best distinct passages for ``query``; with ``everything``, every
        passage whose hybrid score reaches the calibrated threshold (up to
        :data:`MAX_RESULTS`), best first.

        ``refresh``: bring the index in step with the corpus first (True), only report
        whether it is stale (False), or neither (None: a long-running process that
        watches its corpus by other means; no corpus scan per query).

        ``mode`` is ``dense`` (embeddings), ``lexical`` (BM25) or ``hybrid`` (both, fused by
        score, see ranking.py). Quoted phrases must occur in every answer. Near-duplicates
        (syndicated copies) are folded into the first copy's ``also_in``.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        query = clean(query)
        if not query.strip():
            raise QueryError("the query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise QueryError(
                f"the query is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,}"
            )
        if not 1 <= k <= MAX_RESULTS:
            raise QueryError(f"the number of results must be 1 to {MAX_RESULTS}, not {k}")
        if everything and mode != "hybrid":
            raise QueryError("--all needs the hybrid mode: its threshold is on the hybrid score")
        warnings: list[str] = []
        refreshed = None
        parsed = parse_query(focus(query))
        self.model  # noqa: B018 - created here, not on both threads at once
        with ThreadPoolExecutor(max_workers=1) as pool:
            # The corpus check is stat calls and manifest parsing; opening the index and
            # the query encoder is mostly native code that lets go of the GIL: doing the
            # two at once takes a fifth off a new process's query at a million chunks.
            ahead = pool.submit(self._open, parsed.plain) if refresh else None
            if refresh:
                try:
                    # Never queue behind a long rebuild: answer from the live generation.
                    refreshed = self.refresh(progress=progress, wait=0)
                except (IndexLockedError, AccessError) as exc:
                    # A stale index this user may not write (a team's shared index):
                    # the answer from the live generation, with a word about why.
                    if isinstance(exc, AccessError) and self.store.current() is None:
                        raise
                    warnings.append(f"{exc}; answering from the index as it is")
            # After a rebuild, what was opened ahead is the old generation: open again.
            opened = ahead.result() if ahead is not None and refreshed is None else None
        stale = self.status().changes or None if refresh is False else None
        loaded, vector = opened or self._open(parsed.plain)
        filters = filters or Filters()
        if (filters.since or filters.until) and loaded.manifest.undated:
            n = loaded.manifest.undated
            warnings.append(
                f"the date range leaves out {n:,} undated passage{'s' if n != 1 else ''} "
                f"of {loaded.manifest.chunks:,}"
            )
        ranked = ranking.rank(loaded, parsed, vector, mode, filters, k, everything=everything)
        score_of = dict(ranked)
        rows = [row for row, _ in (ranked if everything else ranked[: 5 * k + 50])]
        groups = collapse(
            rows,
            loaded.faiss_index.reconstruct_batch(np.array(rows, dtype=np.int64))
            if rows
            else np.zeros((0, loaded.manifest.dimension), np.float32),
            lambda row: loaded.chunks[row].text,
            MAX_RESULTS if everything else k,
        )
        results = [
            self._result(loaded, rank, row, copies, score_of[row], vector, parsed)
            for rank, (row, copies) in enumerate(groups, start=1)
        ]
        return SearchResponse(
            query=query,
            searched=parsed.plain,
            results=results,
            refreshed=refreshed,
            stale=stale,
            warnings=(*warnings, *self.notices),
        )

    def context(
        self, source: str, paragraph: int, around: int = 0, progress: Progress | None = None
    ) -> Context:
        """Paragraph ``paragraph`` of ``source`` as a search cites it, with ``around``
        paragraphs before and after: to read around a result. The index is brought up to
        date first, as by a search, so the numbers are the corpus's as it is."""
        if around < 0:
            raise QueryError(f"the context must be 0 or more paragraphs, not {around}")
        try:
            self.refresh(wait=0, progress=progress)
        except (IndexLockedError, AccessError) as exc:
            self._notices.append(f"{exc}; answering from the index as it is")
        model = self.model
        loaded = self.store.load(model.name, model.dimension)
        rows = loaded.document_rows.get(source)
        if rows is None:
            raise QueryError(
                f"no document {source!r} in the index; `diplosearch status` lists them"
            )
        chunks = loaded.chunks[rows[0] : rows[1]]
        numbers = sorted({chunk.paragraph for chunk in chunks})
        if paragraph not in numbers:
            if not numbers:
                span = "no passages"
            elif numbers[-1] - numbers[0] + 1 == len(numbers):
                span = f"paragraphs {numbers[0]} to {numbers[-1]}"
            else:  # headings and table rows are not passages: say which paragraphs are
                listed = ", ".join(map(str, numbers[:12])) + (", …" if len(numbers) > 12 else "")
                span = f"passages in paragraphs {listed}"
            raise QueryError(f"{source} has no paragraph {paragraph}; it has {span}")
        at = numbers.index(paragraph)
        wanted = set(numbers[max(0, at - around) : at + around + 1])
        entry = loaded.manifest.sources.get(source)
        return Context(
            source=source,
            title=entry.title if entry else None,
            paragraph=paragraph,
            passages=tuple(_citation(c, entry) for c in chunks if c.paragraph in wanted),
        )

    def _open(self, text: str) -> tuple[LoadedIndex, np.ndarray]:
        """The live generation, loaded, and ``text`` embedded by its query encoder."""
        model = self.model
        loaded = self.store.load(model.name, model.dimension)
        encoder_dir = self.store.encoder_dir(loaded.manifest.encoder)
        damage = self.store.encoder_damage(loaded.manifest)
        if damage is not None:
            raise damage
        try:
            model.ensure_query_encoder(encoder_dir)
        except OSError as exc:  # e.g. a file where the encoders folder goes
            reason = exc.strerror or exc
            raise ModelError(f"cannot write the query encoder in {encoder_dir}: {reason}") from exc
        return loaded, model.embed_query(text, encoder_dir)

    @staticmethod
    def _result(
        loaded: LoadedIndex,
        rank: int,
        row: int,
        copies: list[int],
        score: float,
        vector: np.ndarray,
        parsed: ParsedQuery,
    ) -> SearchResult:
        chunk = loaded.chunks[row]
        entry = loaded.manifest.sources.get(chunk.source)
        where = _citation(chunk, entry)
        return SearchResult(
            rank=rank,
            score=score,
            source=chunk.source,
            title=entry.title if entry else None,
            date=chunk.date,
            paragraph=chunk.paragraph,
            lines=where.lines,
            page=where.page,
            url=where.url,
            format=where.format,
            text=chunk.text,
            section=chunk.section,
            chunk_id=chunk.id,
            speakers=speakers_of(chunk, loaded.manifest.speakers),
            highlight=best_sentence(
                chunk.text, chunk.sentences, loaded.sentence_vectors_of(row), vector, parsed
            ),
            also_in=tuple(
                _citation(copy, loaded.manifest.sources.get(copy.source))
                for copy in (loaded.chunks[c] for c in copies)
            ),
        )


def _citation(chunk: Chunk, entry: SourceEntry | None) -> Citation:
    """Where ``chunk`` is, as a reader finds it: the file's lines for text and Markdown
    (the lines of other formats are those of their extracted text, meaningless in the
    file), a PDF's pages, a web page's URL."""
    form = entry.format if entry else "text"
    return Citation(
        source=chunk.source,
        paragraph=chunk.paragraph,
        lines=(chunk.line_start, chunk.line_end) if form in LINED else None,
        date=chunk.date,
        text=chunk.text,
        page=chunk.pages,
        url=entry.url if entry else None,
        format=form,
    )
