"""Retrieval quality against graded judgements: nDCG@10, Recall@k, MRR@10, the share of
results nobody judged, and the precision and recall of ``--all``.

Gains are the grades (0, 1, 2). A result's gain is the highest grade among the judgements
it covers that no earlier result covered: a second copy of a statement gains nothing. The
ideal ranking is the judged grades, best first. Recall@k and MRR@10 count only passages
that answer the question (grade 2); Recall@k divides by min(k, answers), so 1.0 means the
top k holds as many answers as it could. A result that covers no judgement at all is
unjudged: it scores as irrelevant, and its share is reported so a reader knows how much
of a figure rests on passages nobody read (``docs/evaluation.md``: pool and judge them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from diplosearch.evaluation.judgements import RELEVANT, Judged, Judgement, covered
from diplosearch.results import SearchResult

#: The depth of nDCG and MRR.
DEPTH = 10


@dataclass(frozen=True)
class Scores:
    ndcg: float
    recall: float
    mrr: float
    #: Share of the top results that cover no judgement.
    unjudged: float


@dataclass(frozen=True)
class SetScores:
    """What ``--all`` returned for one question, against its judgements."""

    precision: float
    recall: float
    returned: int
    unjudged: float


def _passages(result: SearchResult) -> list[tuple[str, str]]:
    return [(result.source, result.text)] + [(c.source, c.text) for c in result.also_in]


def gains(
    results: Sequence[SearchResult], judgements: Sequence[Judgement]
) -> list[tuple[int, bool, set[int]]]:
    """Per result: its gain, whether it is judged at all, and the judgements it newly covers."""
    seen: set[int] = set()
    out = []
    for result in results:
        hits = covered(_passages(result), judgements)
        new = hits - seen
        seen |= new
        out.append((max((judgements[i].grade for i in new), default=0), bool(hits), new))
    return out


def score(results: Sequence[SearchResult], judged: Judged, k: int = DEPTH) -> Scores:
    judgements = judged.judgements
    top = gains(results[: max(k, DEPTH)], judgements)
    answers = sum(1 for j in judgements if j.grade == RELEVANT)
    found = sum(1 for _, _, new in top[:k] for i in new if judgements[i].grade == RELEVANT)
    first = next(
        (
            rank
            for rank, (_, _, new) in enumerate(top[:DEPTH], start=1)
            if any(judgements[i].grade == RELEVANT for i in new)
        ),
        None,
    )
    dcg = sum(gain / math.log2(rank + 1) for rank, (gain, _, _) in enumerate(top[:DEPTH], 1))
    ideal_gains = sorted((j.grade for j in judgements), reverse=True)[:DEPTH]
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal_gains, start=1))
    shown = top[:DEPTH]
    return Scores(
        ndcg=dcg / ideal if ideal else 0.0,
        recall=found / min(k, answers) if answers else 0.0,
        mrr=1.0 / first if first else 0.0,
        unjudged=sum(1 for _, judged_, _ in shown if not judged_) / len(shown) if shown else 0.0,
    )


def score_set(results: Sequence[SearchResult], judged: Judged) -> SetScores:
    """Precision (results that answer, grade 2, among all returned: an unjudged one counts
    as not answering) and recall (answers covered among all judged answers)."""
    judgements = judged.judgements
    rows = gains(results, judgements)
    answers = sum(1 for j in judgements if j.grade == RELEVANT)
    hits = {i for _, _, new in rows for i in new if judgements[i].grade == RELEVANT}
    good = sum(1 for _, _, new in rows if any(judgements[i].grade == RELEVANT for i in new))
    return SetScores(
        precision=good / len(rows) if rows else 1.0,
        recall=len(hits) / answers if answers else 0.0,
        returned=len(rows),
        unjudged=sum(1 for _, judged_, _ in rows if not judged_) / len(rows) if rows else 0.0,
    )


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
