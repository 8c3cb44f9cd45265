"""Lexical retrieval: BM25 over the chunk table with SQLite FTS5.

Dense vectors miss exact names (a workshop's name, an acronym, a city such as "Aktobe");
BM25 gets them. FTS5 ships with Python's sqlite3, stores its inverted index on disk beside
the vectors, ranks by BM25, and understands phrases, so ``"Luban Workshop"`` in quotes
matches those words adjacent and in order. Row ids are chunk rows, as in FAISS.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

FILE = "lexical.sqlite"

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
    """An FTS5 string literal: user text never reaches the query syntax unescaped."""
    tokens = _TERM_RE.findall(text)
    return '"' + " ".join(tokens).replace('"', '""') + '"'


def write(path: Path, texts: Sequence[str]) -> None:
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute("CREATE VIRTUAL TABLE chunks USING fts5(text, tokenize='porter unicode61')")
            db.executemany("INSERT INTO chunks (rowid, text) VALUES (?, ?)", enumerate(texts))
    finally:
        db.close()


class LexicalIndex:
    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(path)
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def close(self) -> None:
        self._db.close()

    def count(self) -> int:
        """Rows, from the largest row id (rows are numbered from 0): a B-tree lookup, where
        ``count(*)`` would read a million-row table."""
        (last,) = self._db.execute("SELECT max(id) FROM chunks_content").fetchone()
        return 0 if last is None else int(last) + 1

    def rank(self, query: ParsedQuery, limit: int) -> list[tuple[int, float]]:
        """(row, BM25 score, higher is better) of the best ``limit`` rows.

        Every quoted phrase must match; loose words are OR-ed, so a chunk that has some of
        them still ranks, by BM25."""
        loose = " OR ".join(_quote(w) for w in dict.fromkeys(query.words))
        required = " AND ".join(_quote(p) for p in query.phrases)
        expressions = [f"{required} AND ({loose})", required] if required and loose else []
        expressions = expressions or [required or loose]
        ranked: dict[int, float] = {}
        for expression in filter(None, expressions):
            rows = self._db.execute(
                "SELECT rowid, bm25(chunks) FROM chunks WHERE chunks MATCH ? "
                "ORDER BY bm25(chunks) LIMIT ?",
                (expression, limit),
            )
            for row, score in rows:
                ranked.setdefault(int(row), -float(score))
        return list(ranked.items())[:limit]

    def matching(self, phrases: Iterable[str]) -> set[int]:
        """Rows containing every phrase."""
        expression = " AND ".join(_quote(p) for p in phrases)
        rows = self._db.execute("SELECT rowid FROM chunks WHERE chunks MATCH ?", (expression,))
        return {int(row) for (row,) in rows}
