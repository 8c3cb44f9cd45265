"""Choose the hybrid score's parameters on the development halves of the judged sets.

    pip install -e '.[bench]' && python benchmarks/tune.py

Builds (or refreshes) an index of each judged corpus under ``benchmarks/.work``, measures
every candidate of every development question once (``ranking.features``), then searches
a grid of weights for the best mean nDCG@10 over the three sets (each set counts
equally), and the ``--all`` threshold with the best F1 for answering passages (grade 2).
Test questions are never read. Prints the chosen values and each set's scores; copy them
into ``diplosearch/fusion.py`` (``WEIGHTS``, ``ALL_THRESHOLD``) and
``diplosearch/lexical.py`` (``NEAR``). docs/evaluation.md explains the method.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diplosearch import fusion, lexical, ranking  # noqa: E402
from diplosearch.engine import Engine  # noqa: E402
from diplosearch.evaluation import judgements, metrics  # noqa: E402
from diplosearch.lexical import parse_query  # noqa: E402
from diplosearch.query import focus  # noqa: E402
from diplosearch.results import Citation, SearchResult  # noqa: E402
from tests.corpora import CORPORA, judged_set  # noqa: E402

#: The values each weight may take (the cosine's is 1: only ratios matter).
GRID = {
    "sentence": (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
    "bm25": (0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2),
    "coverage": (0.0, 0.1, 0.2, 0.3, 0.5, 0.8),
    "proximity": (0.0, 0.1, 0.2, 0.3, 0.5, 0.8),
    "document": (0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2),
    "neighbour": (-0.3, -0.1, 0.0, 0.1, 0.2, 0.3, 0.5),
    "length": (-0.2, -0.1, 0.0, 0.05, 0.1, 0.2, 0.3),
}
#: Words allowed between a query's neighbouring words (``lexical.NEAR``).
NEARS = (0, 1, 2, 4, 8)


@dataclass
class Question:
    judged: judgements.Judged
    candidates: list[fusion.Candidate]
    #: row -> (source, text) and vector, for duplicate folding and coverage.
    passages: dict[int, tuple[str, str]]
    vectors: dict[int, np.ndarray]


def measure(engine: Engine, judged: list[judgements.Judged], depth: int) -> list[Question]:
    loaded, _ = engine._open("warm up")
    out = []
    for j in judged:
        parsed = parse_query(focus(j.query))
        vector = engine.model.embed_query(
            parsed.plain, engine.store.encoder_dir(loaded.manifest.encoder)
        )
        index = loaded.lexical()
        dense = ranking.nearest(loaded.faiss_index, vector, depth)
        bm25 = index.rank(parsed, depth)
        candidates = ranking.features(loaded, index, parsed, vector, dense, bm25)
        rows = [c.row for c in candidates]
        vectors = loaded.faiss_index.reconstruct_batch(np.array(rows, dtype=np.int64))
        out.append(
            Question(
                judged=j,
                candidates=candidates,
                passages={r: (loaded.chunks[r].source, loaded.chunks[r].text) for r in rows},
                vectors=dict(zip(rows, vectors, strict=True)),
            )
        )
    return out


def results(q: Question, ranked: list[tuple[int, float]], limit: int) -> list[SearchResult]:
    groups = fusion.collapse(
        [row for row, _ in ranked],
        np.array([q.vectors[row] for row, _ in ranked]),
        lambda r: q.passages[r][1],
        limit,
    )
    out = []
    for rank, (row, copies) in enumerate(groups, start=1):
        source, text = q.passages[row]
        out.append(
            SearchResult(
                rank=rank,
                score=0.0,
                source=source,
                title=None,
                date=None,
                paragraph=0,
                lines=(0, 0),
                text=text,
                section=None,
                chunk_id=str(row),
                also_in=tuple(
                    Citation(q.passages[c][0], 0, (0, 0), None, q.passages[c][1]) for c in copies
                ),
            )
        )
    return out


def ndcg(questions: list[Question], weights: fusion.Measures) -> float:
    scores = []
    for q in questions:
        ranked = fusion.fuse(q.candidates, weights)[:60]
        scores.append(metrics.score(results(q, ranked, 10), q.judged).ndcg)
    return metrics.mean(scores)


def f1_threshold(questions: list[Question], weights: fusion.Measures) -> tuple[float, float]:
    """The threshold with the best mean F1 of ``--all`` (and that F1)."""
    best = (0.0, -1.0)
    fused = [fusion.fuse(q.candidates, weights) for q in questions]
    top = max(s for ranked in fused for _, s in ranked[:1])
    for threshold in np.linspace(0.3 * top, top, 141):
        f1s = []
        for q, all_ranked in zip(questions, fused, strict=True):
            ranked = [(r, s) for r, s in all_ranked if s >= threshold]
            found = metrics.score_set(results(q, ranked, 1000), q.judged)
            p, r = found.precision, found.recall
            f1s.append(2 * p * r / (p + r) if p + r else 0.0)
        f1 = metrics.mean(f1s)
        if f1 > best[1]:
            best = (float(threshold), f1)
    return best


def ascend(sets: dict[str, dict[int, list[Question]]], near: int) -> tuple[fusion.Measures, float]:
    """Coordinate ascent over :data:`GRID` from the shipped weights: each weight in turn
    takes its best value while the others stay, until a full pass changes nothing."""

    def value(weights: fusion.Measures) -> float:
        return metrics.mean([ndcg(sets[name][near], weights) for name in sets])

    weights = fusion.WEIGHTS
    best = value(weights)
    changed = True
    while changed:
        changed = False
        for name, values in GRID.items():
            for v in values:
                trial = dataclasses.replace(weights, **{name: v})
                score = value(trial)
                if score > best + 1e-9:
                    weights, best, changed = trial, score, True
    return weights, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work" / "tune")
    parser.add_argument("--depth", type=int, default=ranking.CANDIDATES)
    parser.add_argument("--sets", default=",".join(CORPORA), help="judged sets to tune on")
    args = parser.parse_args()
    sets: dict[str, dict[int, list[Question]]] = {}
    for name in args.sets.split(","):
        folder, judged = judged_set(name, args.work, split="dev")
        engine = Engine(folder, args.work / f"index-{name}")
        engine.refresh()
        sets[name] = {}
        for near in NEARS:
            lexical.NEAR = near
            sets[name][near] = measure(engine, judged, args.depth)
        print(f"{name}: {len(judged)} development questions measured", file=sys.stderr)
    best: tuple[float, int, fusion.Measures] | None = None
    for near in NEARS:
        weights, value = ascend(sets, near)
        print(f"NEAR {near}: {weights} dev nDCG@10 {value:.3f}", file=sys.stderr)
        if best is None or value > best[0]:
            best = (value, near, weights)
    assert best is not None
    value, near, weights = best
    print(f"NEAR = {near}")
    print(f"WEIGHTS = {weights}\nmean dev nDCG@10 {value:.3f}")
    for name in sets:
        print(f"  {name}: dev nDCG@10 {ndcg(sets[name][near], weights):.3f}")
    pooled = [q for name in sets for q in sets[name][near]]
    threshold, f1 = f1_threshold(pooled, weights)
    print(f"ALL_THRESHOLD = {threshold:.2f}  (dev F1 {f1:.3f})")


if __name__ == "__main__":
    main()
