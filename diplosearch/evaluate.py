"""Retrieval quality against relevance judgements: Recall@k, MRR@10 and nDCG@10 per mode.

A judgement is (document, text a relevant passage must contain), so judgements stay valid
whatever the chunking. A result covers a judgement when it, or a near-duplicate folded
into it, is from that document and contains that text. Gains are binary; a result counts
once however many judgements it covers, and the ideal ranking puts min(judgements, 10)
relevant results first.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from diplosearch.engine import Engine
from diplosearch.errors import JudgementsError
from diplosearch.results import SearchResult


@dataclass(frozen=True)
class Judged:
    query: str
    relevant: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Scores:
    recall: float
    mrr: float
    ndcg: float


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def load(path: Path) -> list[Judged]:
    """``{"queries": [{"query": str, "relevant": [[source, text], ...]}, ...]}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        judged = [
            Judged(
                query=str(item["query"]),
                relevant=tuple((str(source), str(text)) for source, text in item["relevant"]),
            )
            for item in data["queries"]
        ]
    except OSError as exc:
        raise JudgementsError(f"cannot read {path}: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise JudgementsError(f"malformed judgements in {path}: {exc!r}") from exc
    if not judged or any(not j.relevant or not j.query.strip() for j in judged):
        raise JudgementsError(f"{path}: every query needs a text and relevant passages")
    return judged


def covered(result: SearchResult, relevant: Sequence[tuple[str, str]]) -> set[int]:
    passages = [(result.source, result.text)] + [(c.source, c.text) for c in result.also_in]
    return {
        i
        for i, (source, text) in enumerate(relevant)
        for p_source, p_text in passages
        if p_source == source and _norm(text) in _norm(p_text)
    }


def score(results: Sequence[SearchResult], relevant: Sequence[tuple[str, str]], k: int) -> Scores:
    seen: set[int] = set()
    gains = []
    for result in results:
        new = covered(result, relevant) - seen
        seen |= new
        gains.append((1.0 if new else 0.0, len(seen)))
    recall = (gains[min(k, len(gains)) - 1][1] / len(relevant)) if gains else 0.0
    first = next((i for i, (gain, _) in enumerate(gains[:10], start=1) if gain), None)
    dcg = sum(gain / math.log2(i + 1) for i, (gain, _) in enumerate(gains[:10], start=1))
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(len(relevant), 10) + 1))
    return Scores(recall=recall, mrr=1.0 / first if first else 0.0, ndcg=dcg / ideal)


def evaluate(
    engine: Engine, judged: Sequence[Judged], modes: Sequence[str], k: int = 10
) -> dict[str, dict[str, float]]:
    """Mean scores per mode; the index is refreshed once, before the first query."""
    engine.refresh()
    table: dict[str, dict[str, float]] = {}
    for mode in modes:
        runs = [
            score(
                engine.search(j.query, max(k, 10), mode=mode, refresh=False).results,
                j.relevant,
                k,
            )
            for j in judged
        ]
        table[mode] = {
            f"recall@{k}": sum(r.recall for r in runs) / len(runs),
            "mrr@10": sum(r.mrr for r in runs) / len(runs),
            "ndcg@10": sum(r.ndcg for r in runs) / len(runs),
        }
    return table
