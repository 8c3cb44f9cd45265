"""The sentence of a passage that best answers the query, as character offsets."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from diplosearch.lexical import ParsedQuery

#: Weight of each query word found in a sentence, next to its cosine (0..1). Small: it
#: breaks near-ties in favour of the sentence that names what was asked about.
WORD_WEIGHT = 0.05


def best_sentence(
    text: str,
    spans: Sequence[tuple[int, int]],
    vectors: np.ndarray,
    query_vector: np.ndarray,
    query: ParsedQuery,
) -> tuple[int, int]:
    """``(start, end)`` of the sentence of ``text`` closest to the query.

    ``vectors`` holds one embedding per span (built with the index, so a query embeds
    nothing more); a single-sentence passage is its own highlight."""
    if len(spans) < 2 or len(vectors) != len(spans):
        return (spans[0][0], spans[-1][1]) if spans else (0, len(text))
    scores = vectors @ query_vector
    best = max(
        range(len(spans)),
        key=lambda i: float(scores[i]) + _lexical_bonus(text[spans[i][0] : spans[i][1]], query),
    )
    return spans[best]


def _lexical_bonus(sentence: str, query: ParsedQuery) -> float:
    lowered = sentence.lower()
    words = set(re.findall(r"\w+", lowered))
    bonus = WORD_WEIGHT * sum(1 for w in set(query.words) if w in words)
    if query.phrases and all(p.lower() in lowered for p in query.phrases):
        bonus += 1.0
    return bonus
