"""Fusion by score and near-duplicate collapse: turning candidates into k distinct statements."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

#: When two passages are one statement (a digest's syndicated copies, or a summary paragraph
#: that repeats a report's sentence). Measured on the seeds (all pairs of the 196 chunks):
#: every pair with 4-word-shingle containment >= 0.667 or cosine >= 0.96 is the same
#: statement; the closest distinct pairs are a photo caption vs. its story (containment
#: 0.655, cosine 0.73) and two "Li made the remarks while meeting ..." lines about different
#: meetings (0.645, 0.84). Copies reworded a little ("neighbour"/"neighbor") sit at
#: containment 0.667 with cosine >= 0.88. tests/test_fusion.py pins these pairs.
DUPLICATE_COSINE = 0.96
DUPLICATE_CONTAINMENT = 0.75
#: Below DUPLICATE_CONTAINMENT, overlap this large counts only with a cosine this high.
SHARED_CONTAINMENT = 0.6
SHARED_COSINE = 0.87
_SHINGLE = 4


@lru_cache(maxsize=4096)
def shingles(text: str) -> frozenset[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < _SHINGLE:
        return frozenset([tuple(words)])
    return frozenset(zip(*(words[i:] for i in range(_SHINGLE)), strict=False))


def containment(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    """Share of the smaller passage's shingles found in the other."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def same_statement(cosine: float, overlap: float) -> bool:
    return (
        cosine >= DUPLICATE_COSINE
        or overlap >= DUPLICATE_CONTAINMENT
        or (overlap >= SHARED_CONTAINMENT and cosine >= SHARED_COSINE)
    )


@dataclass(frozen=True)
class Measures:
    """What hybrid ranking measures of a passage, whichever ranker proposed it; the
    hybrid score weighs each (a ``Measures`` of weights, :data:`WEIGHTS`)."""

    #: Cosine of the passage's vector with the query's.
    cosine: float = 0.0
    #: The best of that and its sentences' cosines (late chunking): a clause that answers
    #: the question inside a long paragraph.
    sentence: float = 0.0
    #: BM25 (0 when no query term occurs); the score divides it by the query's best.
    bm25: float = 0.0
    #: Share of the query's term weight (IDF) the passage holds: 1.0 holds every term, a
    #: passage sharing only common words with the query holds little.
    coverage: float = 0.0
    #: Share of the query's neighbouring word pairs the passage holds near each other
    #: ("the Korean War", not "Korean" here and "war" far away): the unordered-window
    #: feature of Metzler and Croft's sequential dependence model, which BM25's bag of
    #: words cannot see.
    proximity: float = 0.0
    #: Cosine of the query with the passage's whole document (the mean of its chunks'
    #: vectors): a paragraph of an article about the topic that names it only as "it".
    document: float = 0.0
    #: The best cosine of the paragraphs just before and after it in its document.
    neighbour: float = 0.0
    #: Its length in words, over 100 (at most 1): a one-line passage seldom says much.
    length: float = 0.0


@dataclass(frozen=True)
class Candidate:
    row: int
    measures: Measures


#: The hybrid score's weights, chosen on the development halves of the judged sets by
#: benchmarks/tune.py (docs/evaluation.md); BM25 enters divided by the query's best.
WEIGHTS = Measures(
    cosine=1.0,
    sentence=1.0,
    bm25=0.3,
    coverage=0.3,
    proximity=0.1,
    document=0.8,
    neighbour=0.2,
    length=0.05,
)
#: ``--all`` returns every passage whose hybrid score reaches this, calibrated on the
#: development halves (the threshold with the best F1 for answering passages).
ALL_THRESHOLD = 1.57


def fuse(candidates: Sequence[Candidate], weights: Measures = WEIGHTS) -> list[tuple[int, float]]:
    """(row, hybrid score) best first: the weighted sum of each candidate's measures, its
    BM25 divided by the best BM25 among the candidates."""
    if not candidates:
        return []
    names = [f.name for f in fields(Measures)]
    matrix = np.array([[getattr(c.measures, n) for n in names] for c in candidates])
    top = matrix[:, names.index("bm25")].max()
    if top > 0:
        matrix[:, names.index("bm25")] /= top
    scores = matrix @ np.array([getattr(weights, n) for n in names])
    return sorted(
        ((c.row, float(v)) for c, v in zip(candidates, scores, strict=True)),
        key=lambda item: (-item[1], item[0]),
    )


def collapse(
    ranked: Sequence[int],
    vectors: np.ndarray,
    text: Callable[[int], str],
    limit: int,
) -> list[tuple[int, list[int]]]:
    """The first ``limit`` distinct rows of ``ranked``, each with the lower-ranked rows that
    repeat its statement folded in (see :func:`same_statement`); ``vectors[i]`` is
    ``ranked[i]``'s vector. A row joins the most similar kept row it repeats; all cosines
    come from one matrix product, and wording is compared only where the cosine alone
    does not decide."""
    if not len(ranked):
        return []
    matrix = np.asarray(vectors, dtype=np.float32)
    cosines = matrix @ matrix.T
    kept: list[tuple[int, list[int]]] = []
    kept_at: list[int] = []  # position in ``ranked`` of each kept row
    kept_shingles: list[frozenset[tuple[str, ...]]] = []
    for i, row in enumerate(ranked):
        sh = shingles(text(row))
        twin = None
        if kept_at:
            similar = cosines[i, kept_at]
            for k in np.argsort(-similar, kind="stable").tolist():
                cosine = float(similar[k])
                overlap = 1.0 if cosine >= DUPLICATE_COSINE else containment(sh, kept_shingles[k])
                if same_statement(cosine, overlap):
                    twin = k
                    break
        if twin is not None:
            kept[twin][1].append(row)
        elif len(kept) < limit:
            kept.append((row, []))
            kept_at.append(i)
            kept_shingles.append(sh)
    return kept
