"""Quality on questions nobody tuned for: the test halves of the three judged sets.

Parameters are chosen on the development halves (benchmarks/tune.py); these tests read
only the test halves and fail if hybrid falls below either single mode on any measure
of any set, if a heading comes back as a passage, or if the README's quality table no
longer says what the code measures. The real corpora come from PyPI packages (the
``test`` extra); their indexes are built once per session with the real model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from diplosearch.engine import MODES, Engine
from diplosearch.evaluation import judgements
from diplosearch.evaluation.runs import ALL, evaluate
from diplosearch.lexical import parse_query
from diplosearch.models import MiniLM
from tests.conftest import REPO
from tests.corpora import CORPORA, JUDGEMENTS, write_corpus

MEASURES = ("ndcg@10", "recall@10", "mrr@10")


@pytest.fixture(scope="session")
def judged_engine(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Engine]:
    """Engine over a judged corpus, its index built on first use (ONNX backend: the same
    vectors as torch to 1e-6, built faster)."""
    root = tmp_path_factory.mktemp("judged")
    engines: dict[str, Engine] = {}

    def get(name: str) -> Engine:
        if name not in engines:
            folder = write_corpus(name, root / name)
            engine = Engine(folder, root / f"index-{name}", MiniLM(backend="onnx"))
            engine.refresh()
            engines[name] = engine
        return engines[name]

    return get


@pytest.fixture(scope="session")
def test_tables(judged_engine) -> dict[str, dict[str, dict[str, float]]]:
    return {
        name: evaluate(
            judged_engine(name), judgements.load(JUDGEMENTS / f"{name}.json", "test"), MODES
        )
        for name in CORPORA
    }


#: Where hybrid is measured below a single mode on a test half: each is reported in the
#: README and docs/evaluation.md. Strict: if one closes, the test says so and the entry
#: must go.
KNOWN_GAPS = {("sotu", "mrr@10", "dense")}


@pytest.mark.parametrize(
    ("name", "measure", "single"),
    [
        pytest.param(
            name,
            measure,
            single,
            marks=pytest.mark.xfail(strict=True, reason="known gap, see docs/evaluation.md")
            if (name, measure, single) in KNOWN_GAPS
            else (),
        )
        for name in CORPORA
        for measure in MEASURES
        for single in ("dense", "lexical")
    ],
)
def test_hybrid_is_at_least_as_good_as_either_mode_on_every_test_half(
    test_tables, name, measure, single
):
    table = test_tables[name]
    assert table["hybrid"][measure] >= table[single][measure], (name, measure, table)


def readme_quality() -> dict[tuple[str, str], list[float]]:
    """The README's test-half table: (set, mode) -> nDCG@10, Recall@10, MRR@10."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Measured quality", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(
        r"^\| (seeds|sotu|bbc) \| (dense|lexical|hybrid) \| ([\d.*]+) \| ([\d.*]+) \| ([\d.*]+) \|",
        section,
        re.M,
    )
    return {(s, m): [float(v.strip("*")) for v in values] for s, m, *values in rows}


def test_readme_reports_what_the_test_halves_measure(test_tables):
    reported = readme_quality()
    assert len(reported) == 9
    for (name, mode), values in reported.items():
        measured = [test_tables[name][mode][m] for m in MEASURES]
        assert values == pytest.approx(measured, abs=0.011), (name, mode, measured)
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for name in CORPORA:
        found = test_tables[name][ALL]
        row = re.search(rf"^\| {name} \| ([\d.]+) \| ([\d.]+) \|", text, re.M)
        assert row, name
        assert [float(row[1]), float(row[2])] == pytest.approx(
            [found["precision"], found["recall"]], abs=0.011
        )


# -- headings ----------------------------------------------------------------------------

#: What a heading looks like, written apart from the chunker's own rules: a short line in
#: capitals, a numbered title, or a short line without a sentence's end.
_HEADING_RES = (
    re.compile(r"^[^a-z]*[A-Z]{2}[^a-z]*$"),
    re.compile(r"^(?:[IVXLC]+\.|\(?[a-z0-9]{1,3}\)|\d{1,2}\.|part \d+\.?)(?:\s+\S+){0,6}$", re.I),
    re.compile(r"^.{1,120}[^.!?,;:)\"'’”]$"),
)


def heading_only(engine: Engine, source: str, text: str) -> bool:
    """Whether ``text`` is a heading-shaped line with text after it in its document."""
    if len(text.split()) > 12 or not any(r.match(text.strip()) for r in _HEADING_RES):
        return False
    body = (engine.seeds / source).read_text(encoding="utf-8", errors="replace")
    after = body.split(text, 1)[1] if text in body else ""
    return len(after.strip()) > 0


def test_no_heading_is_ever_a_result_on_the_state_of_the_union(judged_engine):
    engine = judged_engine("sotu")
    questions = judgements.load(JUDGEMENTS / "sotu.json")
    shown = 0
    for j in questions:
        runs = [engine.search(j.query, 10, mode=m, refresh=False).results for m in MODES]
        runs.append(engine.search(j.query, everything=True, refresh=False).results)
        for results in runs:
            for r in results:
                shown += 1
                assert not heading_only(engine, r.source, r.text), (j.query, r.source, r.text)
    assert shown >= len(questions) * 30


def test_headings_of_a_real_address_are_context_not_passages(judged_engine):
    engine = judged_engine("sotu")
    manifest = engine.store.read_manifest()
    loaded = engine.store.load(manifest.model, manifest.dimension)
    first, end = loaded.document_rows["1908-Roosevelt-1.txt"]
    chunks = [loaded.chunks[row] for row in range(first, end)]
    assert all(c.text.strip() != "THE NAVY." for c in chunks)
    navy = [(row, c) for row, c in zip(range(first, end), chunks, strict=True)
            if c.section == "THE NAVY."]  # fmt: skip
    assert navy and "navy" in navy[0][1].text.lower()
    # Searched as context: the heading's word finds a passage under it that never says it.
    silent = [row for row, c in navy if "navy" not in c.text.lower()]
    assert silent
    lexical = loaded.lexical()
    found = {row for row, _ in lexical.rank(parse_query("navy"), lexical.count() + 1)}
    assert set(silent) <= found


def test_sotu_corpus_is_the_addresses_since_1900(judged_engine):
    engine = judged_engine("sotu")
    names = sorted(p.name for p in Path(engine.seeds).glob("*.txt"))
    assert len(names) == 138 and names[0].startswith("1900") and names[-1].startswith("2026")
