"""Run judged questions through the engine: mean scores per mode, and pools to judge.

Pooling (TREC's method): the top results of every mode, and everything ``--all``
returns, for every question; the passages no judgement covers are written out to be read
and graded, then merged into the judgement file (``docs/evaluation.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from diplosearch.engine import Engine
from diplosearch.evaluation.judgements import Judged, covered
from diplosearch.evaluation.metrics import DEPTH, mean, score, score_set
from diplosearch.models import Progress
from diplosearch.results import SearchResult

#: The pseudo-mode that stands for ``hybrid`` with ``--all`` in tables and pools.
ALL = "hybrid --all"


def _runs(
    engine: Engine, judged: Judged, modes: Sequence[str], depth: int
) -> dict[str, list[SearchResult]]:
    """The question's results in every mode (top ``depth``) and with ``--all``."""
    runs: dict[str, list[SearchResult]] = {
        mode: engine.search(judged.query, depth, mode=mode, refresh=False).results for mode in modes
    }
    runs[ALL] = engine.search(judged.query, mode="hybrid", everything=True, refresh=False).results
    return runs


def evaluate(
    engine: Engine,
    judged: Sequence[Judged],
    modes: Sequence[str],
    k: int = DEPTH,
    *,
    progress: Progress | None = None,
) -> dict[str, dict[str, float]]:
    """Mean scores per mode and for ``--all``; the index is refreshed once, first."""
    engine.refresh(progress=progress)
    runs = [_runs(engine, j, modes, max(k, DEPTH)) for j in judged]
    table: dict[str, dict[str, float]] = {}
    for mode in modes:
        scores = [score(r[mode], j, k) for r, j in zip(runs, judged, strict=True)]
        table[mode] = {
            "ndcg@10": mean([s.ndcg for s in scores]),
            f"recall@{k}": mean([s.recall for s in scores]),
            "mrr@10": mean([s.mrr for s in scores]),
            "unjudged@10": mean([s.unjudged for s in scores]),
        }
    sets = [score_set(r[ALL], j) for r, j in zip(runs, judged, strict=True)]
    table[ALL] = {
        "precision": mean([s.precision for s in sets]),
        "recall": mean([s.recall for s in sets]),
        "returned": mean([float(s.returned) for s in sets]),
        "unjudged": mean([s.unjudged for s in sets]),
    }
    return table


def snippet(text: str, limit: int = 160) -> str:
    """A piece of a passage that identifies it within its document: its first sentence,
    cut at a word boundary near ``limit`` characters."""
    text = re.sub(r"\s+", " ", text).strip()
    end = next((m.end() for m in re.finditer(r"[.!?](?=\s|$)", text) if m.end() >= 40), None)
    cut = text[: end if end is not None else len(text)]
    if len(cut) > limit:
        cut = cut[:limit].rsplit(" ", 1)[0]
    return cut


def pool(
    engine: Engine, judged: Sequence[Judged], modes: Sequence[str], depth: int = DEPTH
) -> Iterator[dict[str, Any]]:
    """Every passage in the top ``depth`` of any mode (and in ``--all``) that no judgement
    covers, once per question: ``{"query", "source", "text", "passage", "grade": null}``."""
    engine.refresh()
    for j in judged:
        seen: set[tuple[str, str]] = set()
        for results in _runs(engine, j, modes, depth).values():
            for result in results:
                key = (result.source, result.text)
                if key in seen or covered([key], j.judgements):
                    continue
                seen.add(key)
                yield {
                    "query": j.query,
                    "source": result.source,
                    "text": snippet(result.text),
                    "section": result.section,
                    "passage": result.text,
                    "grade": None,
                }
