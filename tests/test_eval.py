"""Measured quality: metrics, the judgement set, and the hybrid-vs-dense regression gate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from diplosearch import evaluate
from diplosearch.cli import cli
from diplosearch.engine import MODES, Engine
from diplosearch.errors import JudgementsError
from diplosearch.results import Citation, SearchResult
from tests.conftest import REPO

JUDGEMENTS = REPO / "tests" / "judgements.json"


def result(rank: int, source: str, text: str, copies: tuple[Citation, ...] = ()) -> SearchResult:
    return SearchResult(
        rank=rank, score=0.0, source=source, title=None, date=None, paragraph=1,
        lines=(1, 1), text=text, section=None, chunk_id=str(rank), also_in=copies,
    )  # fmt: skip


def test_metrics_on_a_hand_made_ranking():
    relevant = [("a.txt", "alpha"), ("b.txt", "beta"), ("a.txt", "gamma")]
    ranking = [
        result(1, "a.txt", "nothing here"),
        result(2, "a.txt", "Alpha  and gamma"),  # covers two judgements: one gain
        result(3, "b.txt", "alpha"),  # right text, wrong document
        result(4, "b.txt", "beta"),
    ]
    scores = evaluate.score(ranking, relevant, 10)
    assert scores.recall == 1.0
    assert scores.mrr == 0.5
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert scores.ndcg == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert evaluate.score(ranking, relevant, 2).recall == pytest.approx(2 / 3)


def test_a_folded_copy_covers_its_judgement():
    copy = Citation(source="b.txt", paragraph=3, lines=(5, 5), date=None, text="the beta text")
    scores = evaluate.score([result(1, "a.txt", "x", (copy,))], [("b.txt", "beta")], 10)
    assert scores.recall == 1.0 and scores.mrr == 1.0


def test_judgement_set_is_valid_and_varied():
    judged = evaluate.load(JUDGEMENTS)
    assert len(judged) >= 30
    texts = {p.name: " ".join(p.read_text(encoding="utf-8").split()).lower()
             for p in (REPO / "seeds").glob("*.txt")}  # fmt: skip
    for j in judged:
        for source, text in j.relevant:
            assert " ".join(text.split()).lower() in texts[source], (j.query, text)
    assert any('"' in j.query for j in judged)  # a phrase query
    assert sum(len(j.relevant) > 1 for j in judged) >= 15  # multi-passage questions


def test_hybrid_meets_targets_and_never_falls_below_dense(real_index):
    seeds, index = real_index
    table = evaluate.evaluate(Engine(seeds, index), evaluate.load(JUDGEMENTS), MODES, 10)
    hybrid, dense = table["hybrid"], table["dense"]
    assert hybrid["recall@10"] >= 0.97 and hybrid["ndcg@10"] >= 0.90, table
    for measure in hybrid:
        assert hybrid[measure] >= dense[measure], (measure, table)
        assert table["lexical"][measure] >= dense[measure], (measure, table)


def test_railway_timeline_shows_each_statement_once_dated_with_speakers(real_index):
    seeds, index = real_index
    question = "what was said about the China-Kyrgyzstan-Uzbekistan railway"
    out = CliRunner().invoke(
        cli, ["search", question, "--timeline", "--seeds", str(seeds), "--index", str(index)]
    )
    assert out.exit_code == 0, out.output
    text = out.stdout
    statements = {
        "000_2bc4590b1f4df84e.txt:16": "Xi Jinping",
        "001_46777cb8c7ebe838.txt:256": "Li Qiang",
        "002_8c99b24f35ad4fd7.txt:11": "unattributed",
        "003_605b4ee0f7fb2dfc.txt:17": "Xi Jinping",
        "003_605b4ee0f7fb2dfc.txt:27": "Sadyr Japarov",
    }
    positions = []
    for citation, speaker in statements.items():
        line = next(line for line in text.splitlines() if f" {citation} " in line)
        assert text.count(f" {citation} ") == 1 and line.endswith(speaker), line
        positions.append(text.index(line))
    # Dated history: 2023-04-28, 2023-10-25, 2024-07-04, then the undated 000 report.
    order = [positions[2], positions[1], positions[3], positions[0]]
    assert order == sorted(order)
    assert text.index("2023-04-28") < text.index("2023-10-25") < text.index("2024-07-04")
    assert text.index("2024-07-04") < text.index("undated")


def test_bad_judgement_files_are_one_line_errors(tmp_path: Path, real_index):
    seeds, index = real_index
    bad = tmp_path / "bad.json"
    for content in ("{not json", json.dumps({"queries": [{"query": "x", "relevant": []}]})):
        bad.write_text(content)
        with pytest.raises(JudgementsError):
            evaluate.load(bad)
        out = CliRunner().invoke(
            cli, ["eval", str(bad), "--seeds", str(seeds), "--index", str(index)]
        )
        assert out.exit_code == 10
        assert out.stderr.startswith("diplosearch: error:") and len(out.stderr.splitlines()) == 1
