"""Ranking one query over a loaded generation: dense, lexical, or the two fused by score.

Both rankers propose candidates (the nearest vectors, the best BM25 rows); in ``hybrid``
mode every candidate then gets the same four measurements, whichever ranker found it --
its cosine, its best sentence's cosine (the late-chunking vectors built for highlights),
its BM25 score and the share of the query's term weight it contains -- and is ranked by
their weighted sum (see fusion.py). Rank-only fusion could not tell a strong match from
a weak one; these scores can, and the same score, being absolute, decides what ``--all``
returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from diplosearch import fusion
from diplosearch.filters import Filters, speakers_of
from diplosearch.lexical import ParsedQuery
from diplosearch.store import LoadedIndex, nearest

if TYPE_CHECKING:
    from diplosearch.lexical import LexicalIndex

#: Candidates each ranker proposes for a top k: at least this many.
CANDIDATES = 50
#: Candidates each ranker proposes for ``--all``.
ALL_CANDIDATES = 1000


def admitted(loaded: LoadedIndex, parsed: ParsedQuery, filters: Filters) -> set[int] | None:
    """The rows the filters and quoted phrases admit (``None``: all of them)."""
    allowed: set[int] | None = None
    if filters:  # reads every row: seconds at a million chunks
        names = loaded.manifest.speakers
        people = filters.people(names)
        allowed = {
            row
            for row, chunk in enumerate(loaded.chunks)
            if filters.admits(chunk, speakers_of(chunk, names), people)
        }
    if parsed.phrases:  # the BM25 index knows where phrases occur: no row is read
        matches = loaded.lexical().matching(parsed.phrases)
        allowed = matches if allowed is None else allowed & matches
    return allowed


def rank(
    loaded: LoadedIndex,
    parsed: ParsedQuery,
    vector: np.ndarray,
    mode: str,
    filters: Filters,
    k: int,
    *,
    everything: bool = False,
) -> list[tuple[int, float]]:
    """(row, score) best first: cosine (dense), BM25 (lexical) or the fused score
    (hybrid), over the rows the filters and quoted phrases admit. ``everything``: every
    row whose fused score reaches :data:`fusion.ALL_THRESHOLD`."""
    allowed = admitted(loaded, parsed, filters)
    depth = ALL_CANDIDATES if everything else max(CANDIDATES, 5 * k)
    lexical = loaded.lexical()
    dense = nearest(loaded.faiss_index, vector, depth, allowed) if mode != "lexical" else []
    bm25: list[tuple[int, float]] = []
    if mode != "dense":
        # BM25 filters after ranking, so it ranks every match when filtering.
        bm25 = lexical.rank(parsed, depth if allowed is None else loaded.faiss_index.ntotal)
        if allowed is not None:
            bm25 = [(row, score) for row, score in bm25 if row in allowed][:depth]
    if mode == "dense":
        return dense
    if mode == "lexical":
        return bm25
    candidates = features(loaded, lexical, parsed, vector, dense, bm25)
    scored = fusion.fuse(candidates)
    if everything:
        scored = [(row, score) for row, score in scored if score >= fusion.ALL_THRESHOLD]
    return scored


def features(
    loaded: LoadedIndex,
    lexical: LexicalIndex,
    parsed: ParsedQuery,
    vector: np.ndarray,
    dense: list[tuple[int, float]],
    bm25: list[tuple[int, float]],
) -> list[fusion.Candidate]:
    """The measurements of every row either ranker proposed, each kind taken for all
    rows at once (one vector read, one matrix product, one BM25 search per kind)."""
    cosines = dict(dense)
    rows = list(dict.fromkeys([row for row, _ in dense] + [row for row, _ in bm25]))
    if not rows:
        return []
    lexical_scores = dict(bm25)
    unscored = [row for row in rows if row not in lexical_scores]
    if unscored:
        lexical_scores.update(lexical.scores(parsed, unscored))
    weights = lexical.term_weights(parsed)
    total = sum(weights.values())
    pairs = lexical.pairs(parsed)
    held = lexical.holding(weights, rows, pairs)
    chunks = [loaded.chunks[row] for row in rows]
    # Each candidate and the paragraphs just before and after it in its document.
    around: list[list[int]] = []
    for row, chunk in zip(rows, chunks, strict=True):
        first, end = loaded.document_rows[chunk.source]
        around.append([r for r in (row - 1, row + 1) if first <= r < end])
    unread = sorted(({*rows} | {r for rs in around for r in rs}) - cosines.keys())
    if unread:
        vectors = loaded.faiss_index.reconstruct_batch(np.array(unread, dtype=np.int64))
        cosines.update(zip(unread, (vectors @ vector).tolist(), strict=True))
    sentences = loaded.best_sentence_cosines(rows, vector)
    documents = loaded.document_cosines([chunk.source for chunk in chunks], vector)
    # Term by term over the rows that hold it: a query has a few terms, a row many.
    coverage = dict.fromkeys(rows, 0.0)
    for term, weight in weights.items() if total else ():
        for row in held.get(term, ()):  # holding tells apart the first MAX_TERM_BITS
            coverage[row] += weight / total
    proximity = dict.fromkeys(rows, 0.0)
    for pair in pairs:
        for row in held.get(pair, ()):
            proximity[row] += 1 / len(pairs)
    out = []
    for i, (row, chunk, near) in enumerate(zip(rows, chunks, around, strict=True)):
        cosine = cosines[row]
        out.append(
            fusion.Candidate(
                row,
                fusion.Measures(
                    cosine=cosine,
                    sentence=max(cosine, float(sentences[i])),
                    bm25=lexical_scores.get(row, 0.0),
                    coverage=coverage[row],
                    proximity=proximity[row],
                    document=float(documents[i]),
                    neighbour=max((cosines[r] for r in near), default=cosine),
                    length=min(1.0, len(chunk.text.split()) / 100),
                ),
            )
        )
    return out
