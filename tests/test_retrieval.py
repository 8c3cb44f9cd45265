"""Hybrid retrieval: fusion, phrases, duplicate collapse, highlights, speakers, filters."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from diplosearch import fusion
from diplosearch.cli import cli
from diplosearch.engine import Engine
from diplosearch.errors import QueryError
from diplosearch.filters import Filters, period_bound
from diplosearch.highlight import best_sentence
from diplosearch.ingest.chunker import parse_document
from diplosearch.ingest.speakers import canonical_names
from diplosearch.lexical import parse_query
from diplosearch.store import IndexStore
from tests.conftest import SEEDS

# -- fusion ------------------------------------------------------------------------------


def test_fusion_by_score_lets_a_strong_match_beat_a_weak_one():
    weights = fusion.Measures(cosine=1.0, sentence=0.0, bm25=0.5, coverage=0.5)
    strong = fusion.Candidate(1, fusion.Measures(cosine=0.5, bm25=9.0, coverage=1.0))
    weak = fusion.Candidate(2, fusion.Measures(cosine=0.55, bm25=1.0, coverage=0.2))
    close = fusion.Candidate(3, fusion.Measures(cosine=0.8))
    fused = fusion.fuse([weak, strong, close], weights)
    assert [row for row, _ in fused] == [1, 3, 2]
    assert dict(fused)[1] == pytest.approx(0.5 + 0.5 * 1.0 + 0.5 * 1.0)
    # Rank fusion would have put the weak keyword match (2nd on both lists) above the
    # dense-only passage (1st on one list only); scores tell them apart.
    assert fusion.fuse([], weights) == []


def test_collapse_on_hand_made_vectors():
    vectors = {
        0: np.array([1.0, 0.0, 0.0]),
        1: np.array([0.999, 0.0447, 0.0]),  # cosine 0.999 with row 0
        2: np.array([0.0, 1.0, 0.0]),
        3: np.array([0.0, 0.0, 1.0]),
        4: np.array([1.0, 0.0, 0.0]),  # a copy of row 0 seen after the limit is reached
    }
    texts = {i: f"distinct words number {i} here" for i in vectors}
    kept = fusion.collapse(
        [0, 1, 2, 3, 4], np.stack(list(vectors.values())), texts.__getitem__, limit=2
    )
    assert kept == [(0, [1, 4]), (2, [])]


def test_collapse_by_shared_wording_even_when_vectors_differ():
    text = (
        "China is ready to work with Mongolia to implement the consensus of the two heads of state"
    )
    texts = {0: text, 1: "For his part, " + text + ", Li said.", 2: "An unrelated sentence."}
    vectors = {0: np.array([1.0, 0.0]), 1: np.array([0.6, 0.8]), 2: np.array([0.0, 1.0])}
    kept = fusion.collapse([0, 1, 2], np.stack(list(vectors.values())), texts.__getitem__, limit=5)
    assert kept == [(0, [1]), (2, [])]


# (source prefix, line) pairs from the seeds: the same statement, or not.
SAME = [(("001", 15), ("001", 79)), (("001", 53), ("001", 250)), (("001", 51), ("001", 239)),
        (("001", 47), ("001", 229)), (("001", 35), ("001", 201))]  # fmt: skip
DIFFERENT = [(("003", 3), ("003", 9)), (("001", 162), ("001", 210)), (("001", 214), ("004", 11))]


@pytest.mark.parametrize(("pairs", "expected"), [(SAME, True), (DIFFERENT, False)])
def test_duplicate_rule_on_real_seed_copies(real_index, pairs, expected):
    _, index = real_index
    store = IndexStore(index)
    manifest = store.read_manifest()
    loaded = store.load(manifest.model, manifest.dimension)
    rows = {(c.source[:3], c.line_start): i for i, c in enumerate(loaded.chunks)}
    for a, b in pairs:
        ra, rb = rows[a], rows[b]
        cosine = float(loaded.faiss_index.reconstruct(ra) @ loaded.faiss_index.reconstruct(rb))
        overlap = fusion.containment(
            fusion.shingles(loaded.chunks[ra].text), fusion.shingles(loaded.chunks[rb].text)
        )
        assert fusion.same_statement(cosine, overlap) is expected, (a, b, cosine, overlap)


def test_syndicated_copies_collapse_in_search(real_index):
    seeds, index = real_index
    response = Engine(seeds, index).search(
        "Li offered four proposals on deepening SCO cooperation", k=10, refresh=False
    )
    first = response.results[0]
    assert first.source.startswith("001") and "four proposals" in first.text
    copies = {(c.source[:3], c.lines[0]) for c in first.also_in}
    assert {("001", 11), ("001", 75)} - {("001", first.lines[0])} <= copies
    texts = [r.text for r in response.results]
    assert sum("four proposals" in t for t in texts) == 1  # k distinct statements


# -- lexical and phrases -----------------------------------------------------------------


def test_parse_query_splits_phrases_and_words():
    parsed = parse_query('what about the "Luban Workshop" in Tajikistan')
    assert parsed.phrases == ("Luban Workshop",)
    assert parsed.words == ("tajikistan",)
    assert parsed.plain == "what about the Luban Workshop in Tajikistan"


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_quoted_phrase_must_match_as_a_phrase(fake_engine: Engine, mode):
    results = fake_engine.search('"Luban Workshop"', k=10, mode=mode).results
    assert len(results) == 4  # 000, 003 and twice 004; 002 has "Luban's workshop"
    assert all("luban workshop" in r.text.lower() for r in results)
    assert not fake_engine.search('"Workshop Luban"', k=10, mode=mode).results


def test_exact_name_found_by_lexical_side(real_index):
    seeds, index = real_index
    engine = Engine(seeds, index)
    hybrid = engine.search("Aktobe", k=3, refresh=False).results
    assert "Aktobe" in hybrid[0].text
    dense = engine.search("Aktobe", k=3, mode="dense", refresh=False).results
    assert all("Aktobe" not in r.text for r in dense)  # why the lexical side exists


# -- highlight ---------------------------------------------------------------------------


def test_best_sentence_on_hand_made_vectors():
    text = "First sentence here. Second one about railways. Third."
    spans = [(0, 20), (21, 47), (48, 54)]
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    query = parse_query("railways")
    assert best_sentence(text, spans, vectors, np.array([0.0, 1.0]), query) == (21, 47)
    # Lexical bonus breaks a near tie in favour of the sentence naming the query word.
    flat = np.array([[0.5, 0.5], [0.49, 0.49], [0.5, 0.5]])
    assert best_sentence(text, spans, flat, np.array([1.0, 0.0]), query) == (21, 47)
    assert best_sentence("One.", [(0, 4)], np.zeros((0, 2)), np.zeros(2), query) == (0, 4)


def test_highlight_offsets_point_at_the_answering_sentence(real_index):
    seeds, index = real_index
    response = Engine(seeds, index).search(
        "what was said about the China-Kyrgyzstan-Uzbekistan railway", k=10, refresh=False
    )
    for result in response.results:
        start, end = result.highlight
        assert 0 <= start < end <= len(result.text)
        assert result.text[start:end].strip() == result.text[start:end]
    by_line = {(r.source[:3], r.lines[0]): r for r in response.results}
    for key in [("002", 11), ("003", 27)]:  # multi-sentence paragraphs
        r = by_line[key]
        sentence = r.text[r.highlight[0] : r.highlight[1]]
        assert "China-Kyrgyzstan-Uzbekistan railway" in sentence
        assert len(sentence) < len(r.text)


# -- speakers ----------------------------------------------------------------------------


@cache
def seed_speakers() -> dict[tuple[str, int], tuple[str, ...]]:
    found = {}
    for path in sorted(SEEDS.glob("*.txt")):
        doc = parse_document(
            path.name, path.read_text(encoding="utf-8"), lambda t: len(t.split()), 254
        )
        found.update({(path.name[:3], c.line_start): c.speakers for c in doc.chunks})
    return found


@pytest.mark.parametrize(
    ("where", "speakers"),
    [
        (("000", 16), ("Xi Jinping",)),  # "..., Xi said, adding that ..." after a full mention
        (("000", 22), ("Sadyr Zhaparov",)),  # "Zhaparov said" -> the full name in the text
        (("000", 24), ("Sadyr Zhaparov",)),  # "..., he said" -> last named speaker
        (("000", 37), ("Serdar Berdymukhamedov",)),  # "The Turkmen president expressed"
        (("003", 17), ("Xi Jinping",)),  # "The Chinese president said"
        (("003", 23), ("Sadyr Japarov",)),  # "For his part, Japarov said"
        (("004", 17), ("Muhriddin",)),  # "Tajikistan, he said, firmly supports"
        (("004", 23), ("Muhriddin",)),  # "The minister noted" -> current speaker
        (("001", 45), ("Li Qiang",)),  # "Li met with ... He said" -> subject, not last speaker
        (("001", 199), ("Mohammad Mokhber",)),  # surname resolved within its report
        (("001", 239), ("Roman Golovchenko",)),  # "Golovchenko, for his part, said"
        (("001", 256), ("Li Qiang",)),  # "Li also called on"
        (("001", 114), ("Li Qiang",)),  # speech text: "Full Text: Speech by ... Li Qiang"
        (("001", 87), ()),  # "said participants of the meeting": no person
        (("002", 11), ()),  # joint outcome, nobody named
    ],
)
def test_speakers_on_real_seed_sentences(where, speakers):
    assert seed_speakers()[where] == speakers


def test_name_variants_merge_only_when_the_text_makes_it_clear():
    mapping = canonical_names(
        ["Sadyr Zhaparov", "Sadyr Japarov", "Sadyr Japarov", "Akylbek Japarov", "Xi Jinping", "Xi"]
    )
    assert mapping["Sadyr Zhaparov"] == "Sadyr Japarov"
    assert mapping["Akylbek Japarov"] == "Akylbek Japarov"  # another person
    assert mapping["Xi"] == "Xi Jinping"


def test_speaker_filter_uses_one_name_per_person(fake_engine: Engine):
    for spelling in ("Zhaparov", "Japarov", "sadyr japarov"):
        results = fake_engine.search("railway", k=50, filters=Filters(speaker=spelling)).results
        sources = {r.source[:3] for r in results}
        assert sources == {"000", "001", "003"}, spelling
        assert all(r.speakers == ("Sadyr Japarov",) for r in results)


# -- filters -----------------------------------------------------------------------------


def test_date_filters(fake_engine: Engine):
    results = fake_engine.search(
        "cooperation", k=50, filters=Filters(since="2023-01-01", until="2023-12-31")
    ).results
    assert results
    assert all("2023-01-01" <= r.date <= "2023-12-31" for r in results)
    assert {r.source[:3] for r in results} == {"001", "002"}
    later = fake_engine.search("cooperation", k=50, filters=Filters(since="2024-01-01")).results
    assert {r.source[:3] for r in later} == {"003"}  # undated 000 never passes a date filter


def test_source_glob_filter(fake_engine: Engine, seeds: Path):
    results = fake_engine.search("cooperation", k=50, filters=Filters(source="00[34]_*")).results
    assert {r.source[:3] for r in results} == {"003", "004"}


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


def test_the_five_railway_statements_are_the_top_five(real_index):
    seeds, index = real_index
    question = "what was said about the China-Kyrgyzstan-Uzbekistan railway"
    results = Engine(seeds, index).search(question, k=5, refresh=False).results
    assert all("China-Kyrgyzstan-Uzbekistan railway" in r.text for r in results)
    assert len({(r.source, r.lines) for r in results}) == 5


def test_all_returns_every_railway_statement_and_needs_hybrid(real_index):
    seeds, index = real_index
    engine = Engine(seeds, index)
    question = "what was said about the China-Kyrgyzstan-Uzbekistan railway"
    found = engine.search(question, everything=True, refresh=False).results
    railway = [r for r in found if "China-Kyrgyzstan-Uzbekistan railway" in r.text]
    assert len(railway) == 5 and len(found) > 10  # more than the default top 10
    scores = [r.score for r in found]
    assert scores == sorted(scores, reverse=True) and min(scores) >= fusion.ALL_THRESHOLD
    out = CliRunner().invoke(
        cli, ["search", question, "--all", "--mode", "dense", "--seeds", str(seeds),
              "--index", str(index)],
    )  # fmt: skip
    assert out.exit_code == 2 and "--all needs the hybrid mode" in out.stderr


def test_neighbouring_query_words_are_held_only_near_each_other(tmp_path: Path):
    """The proximity measure: "the Korean War" is held by a passage with the two words
    close together (in either order, as Tantivy's sloppy phrase allows), not by one with
    "Korean" in one clause and "war" a dozen words later."""
    from diplosearch import lexical

    texts = [
        "The Korean War ended in an armistice.",
        "Korean diplomats met in Geneva, far from any talk of a coming trade war.",
        "The war, Korean veterans said, was long.",
        "The Korean   conflict, a war in all but name.",
    ]
    lexical.write(tmp_path / "lex", texts, [""] * len(texts))
    index = lexical.LexicalIndex(tmp_path / "lex")
    parsed = parse_query("the Korean War")
    pairs = index.pairs(parsed)
    assert pairs == [("korean", "war")]
    held = index.holding(index.term_weights(parsed), range(len(texts)), pairs)
    assert lexical.NEAR < 12  # the words between "Korean" and "war" in text 1
    assert held[("korean", "war")] == {0, 2, 3}
    assert held["korean"] == held["war"] == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2023", False, "2023-01-01"),
        ("2023", True, "2023-12-31"),
        ("2024-02", True, "2024-02-29"),
        ("2023-02", True, "2023-02-28"),
        ("2023-5", False, "2023-05-01"),
        ("2023-05-18", True, "2023-05-18"),
    ],
)
def test_a_date_bound_is_a_year_a_month_or_a_day(text: str, end: bool, expected: str):
    assert period_bound(text, end=end) == expected


@pytest.mark.parametrize("text", ["23", "2023-13", "2023-02-30", "May 2023", "2023-05-18T10"])
def test_a_date_bound_that_is_not_one_is_refused(text: str):
    with pytest.raises(QueryError):
        period_bound(text)


def test_a_date_range_says_how_many_undated_passages_it_leaves_out(fake_engine: Engine):
    """Article 000 has no date: a date range cannot admit its passages, and says so (before,
    --since dropped them silently)."""
    response = fake_engine.search("cooperation", k=5, filters=Filters(since="2023-01-01"))
    undated = fake_engine.store.read_manifest().undated
    assert undated > 0
    assert f"the date range leaves out {undated:,} undated passages" in response.warnings[-1]
    assert not any("undated" in w for w in fake_engine.search("cooperation", k=5).warnings)
