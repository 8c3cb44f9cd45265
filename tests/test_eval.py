"""Measuring quality: graded metrics, judgement files, pooling and merging, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from diplosearch.cli import cli
from diplosearch.errors import JudgementsError
from diplosearch.evaluation import judgements, metrics
from diplosearch.evaluation.judgements import Judged, Judgement
from diplosearch.evaluation.runs import snippet
from diplosearch.results import Citation, SearchResult
from tests.corpora import CORPORA, JUDGEMENTS


def result(rank: int, source: str, text: str, copies: tuple[Citation, ...] = ()) -> SearchResult:
    return SearchResult(
        rank=rank, score=0.0, source=source, title=None, date=None, paragraph=1,
        lines=(1, 1), text=text, section=None, chunk_id=str(rank), also_in=copies,
    )  # fmt: skip


def judged(*entries: tuple[str, str, int]) -> Judged:
    return Judged(query="q", judgements=tuple(Judgement(*e) for e in entries))


def test_graded_metrics_on_a_hand_made_ranking():
    truth = judged(("a.txt", "alpha", 2), ("b.txt", "beta", 1), ("a.txt", "gamma", 2),
                   ("c.txt", "noise", 0))  # fmt: skip
    ranking = [
        result(1, "c.txt", "some noise here"),  # judged, grade 0
        result(2, "a.txt", "Alpha  and gamma"),  # covers two answers: gain 2, counted once
        result(3, "b.txt", "alpha"),  # right text, wrong document: unjudged
        result(4, "b.txt", "beta"),  # grade 1
    ]
    scores = metrics.score(ranking, truth, 10)
    ideal = 2 + 2 / math.log2(3) + 1 / math.log2(4)
    assert scores.ndcg == pytest.approx((2 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert scores.recall == 1.0  # both answers (grade 2) are covered by result 2
    assert scores.mrr == 0.5  # the first answer is at rank 2
    assert scores.unjudged == pytest.approx(1 / 4)
    assert metrics.score(ranking, truth, 1).recall == 0.0
    # Recall divides by min(k, answers): one answer in the top 1 of a two-answer question.
    first = [result(1, "a.txt", "alpha")]
    assert metrics.score(first, truth, 1).recall == 1.0


def test_a_folded_copy_covers_its_judgement():
    copy = Citation(source="b.txt", paragraph=3, lines=(5, 5), date=None, text="the beta text")
    scores = metrics.score([result(1, "a.txt", "x", (copy,))], judged(("b.txt", "beta", 2)))
    assert scores.recall == 1.0 and scores.mrr == 1.0 and scores.unjudged == 0.0


def test_set_precision_and_recall():
    truth = judged(("a.txt", "alpha", 2), ("a.txt", "gamma", 2), ("b.txt", "beta", 1))
    found = [result(1, "a.txt", "alpha"), result(2, "b.txt", "beta"), result(3, "x.txt", "?")]
    scores = metrics.score_set(found, truth)
    assert scores.precision == pytest.approx(1 / 3)  # grade 1 and unjudged do not count
    assert scores.recall == pytest.approx(1 / 2)
    assert scores.returned == 3 and scores.unjudged == pytest.approx(1 / 3)


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_judgement_files_binary_graded_and_split(tmp_path: Path):
    path = write(tmp_path / "j.json", {"queries": [
        {"query": "one", "split": "dev", "relevant": [["a.txt", "alpha"]]},
        {"query": "two", "split": "test", "relevant": [["a.txt", "x", 0], ["b.txt", "y", 2]]},
    ]})  # fmt: skip
    both = judgements.load(path)
    assert both[0].judgements == (Judgement("a.txt", "alpha", 2),)  # binary entry: grade 2
    assert [j.query for j in judgements.load(path, "test")] == ["two"]
    assert [j.grade for j in both[1].judgements] == [0, 2]


@pytest.mark.parametrize(
    "queries",
    [
        [{"query": "x", "relevant": []}],
        [{"query": "x", "relevant": [["a.txt", "t", 1]]}],  # no answer
        [{"query": "x", "relevant": [["a.txt", "t", 3]]}],  # no such grade
        [{"query": "x", "split": "train", "relevant": [["a.txt", "t"]]}],
        [{"query": "x", "relevant": [["a.txt"]]}],
    ],
)
def test_malformed_judgement_files_are_refused(tmp_path: Path, queries):
    with pytest.raises(JudgementsError):
        judgements.load(write(tmp_path / "bad.json", {"queries": queries}))


def test_merge_adds_grades_once_and_keeps_the_file_readable(tmp_path: Path):
    path = write(tmp_path / "j.json", {"about": "a set", "queries": [
        {"query": "one", "split": "dev", "relevant": [["a.txt", "alpha"]]}]})  # fmt: skip
    graded = [
        {"query": "one", "source": "b.txt", "text": "beta", "grade": 0},
        {"query": "one", "source": "a.txt", "text": "Alpha", "grade": 2},  # already judged
    ]
    assert judgements.merge(path, graded) == 1
    assert judgements.merge(path, graded) == 0
    loaded = judgements.load(path)
    assert [(j.source, j.grade) for j in loaded[0].judgements] == [("a.txt", 2), ("b.txt", 0)]
    assert json.loads(path.read_text())["about"] == "a set"
    with pytest.raises(JudgementsError):
        judgements.merge(path, [{"query": "unknown", "source": "a", "text": "b", "grade": 1}])


def test_snippet_is_the_first_sentence_cut_at_a_word():
    text = "Short one. " + "A much longer second sentence that goes on. Third."
    assert snippet(text) == "Short one. A much longer second sentence that goes on."
    assert len(snippet("word " * 100)) <= 160 and not snippet("word " * 100).endswith(" ")


@pytest.mark.parametrize("name", CORPORA)
def test_judged_sets_are_split_once_and_large_enough(name):
    questions = judgements.load(JUDGEMENTS / f"{name}.json")
    dev = [j for j in questions if j.split == "dev"]
    test = [j for j in questions if j.split == "test"]
    assert len(dev) + len(test) == len(questions)
    assert len(test) >= (30 if name == "seeds" else 20) and len(dev) >= 20
    assert len({j.query for j in questions}) == len(questions)  # no question twice
    if name != "seeds":
        assert len(questions) >= 40


def test_eval_pool_and_merge_through_the_cli(tmp_path: Path, real_index):
    seeds, index = real_index
    answer = ["002_8c99b24f35ad4fd7.txt", "consulates general in Xian and Aktobe"]
    path = write(tmp_path / "j.json", {"queries": [
        {"query": "Aktobe", "split": "test", "relevant": [answer]}]})  # fmt: skip
    where = ["--seeds", str(seeds), "--index", str(index)]
    pool = tmp_path / "pool.jsonl"
    out = CliRunner().invoke(cli, ["eval", str(path), "--pool", str(pool), *where])
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in pool.read_text().splitlines()]
    assert lines and all(p["grade"] is None and p["query"] == "Aktobe" for p in lines)
    out = CliRunner().invoke(cli, ["eval", str(path), "--merge", str(pool)])
    assert out.exit_code == 10 and "no grade yet" in out.stderr
    pool.write_text("".join(json.dumps(p | {"grade": 0}) + "\n" for p in lines))
    out = CliRunner().invoke(cli, ["eval", str(path), "--merge", str(pool)])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(cli, ["eval", str(path), "--split", "test", "--json", *where])
    table = json.loads(out.stdout)["modes"]
    assert table["hybrid"]["unjudged@10"] == 0.0  # every pooled passage is now judged
    assert set(table["hybrid --all"]) == {"precision", "recall", "returned", "unjudged"}


def test_bad_judgement_files_are_one_line_errors(tmp_path: Path, real_index):
    seeds, index = real_index
    bad = tmp_path / "bad.json"
    for content in ("{not json", json.dumps({"queries": [{"query": "x", "relevant": []}]})):
        bad.write_text(content)
        out = CliRunner().invoke(
            cli, ["eval", str(bad), "--seeds", str(seeds), "--index", str(index)]
        )
        assert out.exit_code == 10
        assert out.stderr.startswith("diplosearch: error:") and len(out.stderr.splitlines()) == 1
