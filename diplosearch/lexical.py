"""Lexical retrieval: BM25 over the chunk table with Tantivy.

Dense vectors miss exact names (a workshop's name, an acronym, a city such as "Aktobe");
BM25 gets them. Tantivy (Lucene's design in Rust) stores its inverted index with positions
beside the vectors, so ``"Luban Workshop"`` in quotes matches those words adjacent and in
order, and it ranks the top k by block-max WAND without scoring every match: SQLite FTS5,
used before, scored all of them (50 ms for a headline at a million chunks, 0.8 ms here).
Each document carries its chunk row as a fast field, as FAISS row i is chunk i.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Field names of the Tantivy schema, and the analyzer of the text field.
TEXT, ROW, ANALYZER = "text", "row", "diplosearch"
#: Tantivy's lock files: empty, released when the writer closes; not part of the index.
LOCK_FILES = (".tantivy-meta.lock", ".tantivy-writer.lock")

#: Words that carry no topic in a question; BM25 would give them little weight anyway,
#: but with OR semantics they would let nearly every chunk match.
STOPWORDS = frozenset(
    (  # noqa: SIM905 - one word list, easier to read than 130 quoted strings
        "a about above after again against all also am an and any are as at be because been "
        "before being below between both but by can could did do does doing down during each "
        "few for from further had has have having he her here hers him his how i if in into "
        "is it its itself just me more most my no nor not now of off on once only or other "
        "our ours out over own said same say says she should so some such than that the "
        "their theirs them then there these they this those through to too under until up "
        "very was we were what when where which while who whom why will with would you your"
    ).split()
)
_PHRASE_RE = re.compile(r'"([^"]*)"')
_TERM_RE = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into quoted phrases (must match) and loose words."""

    phrases: tuple[str, ...]
    words: tuple[str, ...]
    #: The query without its quote marks: what the dense side embeds.
    plain: str


def parse_query(query: str) -> ParsedQuery:
    phrases = tuple(p.strip() for p in _PHRASE_RE.findall(query) if _TERM_RE.search(p))
    rest = _PHRASE_RE.sub(" ", query)
    words = tuple(w for w in _TERM_RE.findall(rest.lower()) if w not in STOPWORDS)
    plain = re.sub(r"\s+", " ", query.replace('"', " ")).strip()
    return ParsedQuery(phrases=phrases, words=words, plain=plain)


def _quote(text: str) -> str:
    """A quoted query-parser phrase of word tokens: user text never reaches the syntax."""
    return '"' + " ".join(_TERM_RE.findall(text)) + '"'


def _analyzer() -> Any:
    """Words split on anything not a letter or digit, lower-cased, accents folded,
    Snowball-stemmed (as FTS5's ``porter unicode61``): "Kyrgyz" finds "kyrgyz"."""
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _schema() -> Any:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field(TEXT, stored=False, tokenizer_name=ANALYZER, index_option="position")
    builder.add_unsigned_field(ROW, stored=False, indexed=False, fast=True)
    return builder.build()


def write(folder: Path, texts: Sequence[str]) -> None:
    """Index ``texts`` (row i is ``texts[i]``) into the new folder ``folder``.

    Any failure (a full disk) raises :class:`OSError`; Tantivy reports it as ValueError."""
    import tantivy

    folder.mkdir()
    try:
        index = tantivy.Index(_schema(), path=str(folder))
        index.register_tokenizer(ANALYZER, _analyzer())
        # One indexing thread: documents keep row order, so equal inputs give equal
        # segments and ties rank alike in every build (two threads build 2x faster
        # but split rows between segments at random).
        writer = index.writer(heap_size=256_000_000, num_threads=1)
        for row, text in enumerate(texts):
            document = tantivy.Document()
            document.add_text(TEXT, text)
            document.add_unsigned(ROW, row)
            writer.add_document(document)
        writer.commit()
        writer.wait_merging_threads()
    except ValueError as exc:
        raise OSError(f"lexical index {folder}: {exc}") from exc
    for name in LOCK_FILES:
        (folder / name).unlink(missing_ok=True)


class LexicalIndex:
    def __init__(self, folder: Path) -> None:
        """Open for reading; raises :class:`OSError` if ``folder`` is not a readable index
        (Tantivy memory-maps its files: opening reads almost nothing)."""
        import tantivy

        if not (folder / "meta.json").is_file():
            raise FileNotFoundError(folder / "meta.json")
        try:
            self._index = tantivy.Index.open(str(folder))
            self._index.register_tokenizer(ANALYZER, _analyzer())
            self._searcher = self._index.searcher()
        except ValueError as exc:
            raise OSError(str(exc)) from exc
        self._tantivy = tantivy

    def close(self) -> None:
        """Nothing to release by hand: the memory maps go with the object."""

    def count(self) -> int:
        return int(self._searcher.num_docs)

    def _phrase(self, text: str) -> Any:
        return self._index.parse_query(_quote(text), [TEXT])

    def _search(self, clauses: list[tuple[Any, Any]], limit: int) -> list[tuple[int, float]]:
        if not clauses or limit <= 0:
            return []
        query = self._tantivy.Query.boolean_query(clauses)
        if limit > 1000:  # "all matches": Tantivy would reserve room for ``limit`` hits
            limit = self._searcher.search(query, 1, count=True).count
            if not limit:
                return []
        hits = self._searcher.search(query, limit, count=False).hits
        rows = self._searcher.fast_field_values(ROW, [address for _, address in hits])
        ranked = [(int(row), float(score)) for (score, _), row in zip(hits, rows, strict=True)]
        return sorted(ranked, key=lambda hit: (-hit[1], hit[0]))

    def rank(self, query: ParsedQuery, limit: int) -> list[tuple[int, float]]:
        """(row, BM25 score, higher is better) of the best ``limit`` rows.

        Every quoted phrase must match; loose words are OR-ed, so a chunk that has some of
        them still ranks, by BM25 (with phrases, the words only add to the score)."""
        occur = self._tantivy.Occur
        clauses = [(occur.Must, self._phrase(p)) for p in query.phrases]
        clauses += [(occur.Should, self._phrase(w)) for w in dict.fromkeys(query.words)]
        return self._search(clauses, limit)

    def matching(self, phrases: Iterable[str]) -> set[int]:
        """Rows containing every phrase."""
        clauses = [(self._tantivy.Occur.Must, self._phrase(p)) for p in phrases]
        return {row for row, _ in self._search(clauses, self.count())}
