"""A researcher's folder, indexed with the real model: the seeds plus real web pages,
PDFs and Word files, Markdown with front matter, a Russian and a Chinese article, and
every bad input such a folder holds (issue 13's acceptance)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from diplosearch.cli import cli
from tests.conftest import REPO, SEEDS
from tests.test_formats import zip_archive

FIXTURES = REPO / "tests" / "fixtures"
RAILWAY_QUESTION = "what was said about the China-Kyrgyzstan-Uzbekistan railway"
#: The fixture documents, where each comes from in tests/fixtures.
DOCUMENTS = {
    "xinhua-kyrgyzstan.html": "railway",
    "joint-statement.pdf": "railway",
    "readout.docx": "railway",
    "kabar-ru.html": "railway",
    "xinhua-zh.html": "railway",
    "notes.md": "railway",
    "reuters.com.parasite.html": "web",
    "Seige_of_Vicksburg_Sample_OCR.pdf": "pdf",
    "par-known-styles.docx": "docx",
}


def run(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(corpus, index): the seeds and the fixture documents, indexed once."""
    root = tmp_path_factory.mktemp("mixed")
    corpus = root / "seeds"
    shutil.copytree(SEEDS, corpus)
    for name, folder in DOCUMENTS.items():
        shutil.copy(FIXTURES / folder / name, corpus / name)
    result = run("index", "--seeds", str(corpus), "--index", str(root / "index"))
    assert result.exit_code == 0, result.output
    return corpus, root / "index"


def args(mixed: tuple[Path, Path]) -> list[str]:
    return ["--seeds", str(mixed[0]), "--index", str(mixed[1])]


def search(mixed, query: str, *extra: str) -> list[dict]:
    result = run("search", query, "--json", *extra, *args(mixed))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["results"]


def test_every_format_is_indexed_with_title_date_and_language(mixed):
    manifest = json.loads(run("status", "--json", *args(mixed)).stdout)
    assert manifest["formats"] == {"text": 5, "html": 4, "docx": 2, "pdf": 2, "markdown": 1}
    assert manifest["languages"]["ru"] == 1 and manifest["languages"]["zh"] == 1
    assert any("not in English (Russian 1, Chinese 1)" in note for note in manifest["notes"])
    text = run("status", *args(mixed)).stdout
    assert "languages: en 11, ru 1, unknown 1, zh 1" in text  # a 58-character Word file
    expected = {  # title, date, language
        "xinhua-kyrgyzstan.html": (
            "Xi urges China, Kyrgyzstan to promote high-quality Belt and Road cooperation",
            "2024-07-04", "en",
        ),
        "joint-statement.pdf": ("Two-way talks eye greater teamwork", "2022-09-15", "en"),
        "readout.docx": (
            "Qin Gang holds talks with foreign ministers of five Central Asian countries "
            "respectively", "2023-04-26", "en",
        ),
        "kabar-ru.html": (
            "Си Цзиньпин и Садыр Жапаров обсудили строительство железной дороги",
            "2023-05-19", "ru",
        ),
        "xinhua-zh.html": ("习近平同吉尔吉斯斯坦总统扎帕罗夫会谈", "2023-05-18", "zh"),
        "notes.md": ("Notes on the China-Kyrgyzstan-Uzbekistan railway", "2024-06-06", "en"),
        "reuters.com.parasite.html": (
            "'Parasite' scores historic upset at SAG awards, boosting Oscar chances",
            "2020-01-20", "en",
        ),
    }  # fmt: skip
    for name, (title, date, language) in expected.items():
        row = next(line for line in text.splitlines() if line.strip().startswith(name))
        assert title in row and date in row and f" {language} " in row, row


def test_a_search_finds_a_web_page_paragraph_with_its_url(mixed):
    hits = search(mixed, "Parasite wins best cast ensemble at SAG awards", "-k", "3")
    top = hits[0]
    assert top["source"] == "reuters.com.parasite.html"
    assert top["format"] == "html" and top["lines"] is None and top["page"] is None
    assert top["url"].startswith("https://www.reuters.com/")
    shown = run("search", "Parasite wins best cast ensemble at SAG awards", "-k", "1", *args(mixed))
    assert top["url"] in shown.stdout


def test_a_search_finds_a_pdf_paragraph_with_its_page(mixed):
    hits = search(mixed, "mortar shells flying into the city at night", "-k", "3")
    top = hits[0]
    assert top["source"] == "Seige_of_Vicksburg_Sample_OCR.pdf" and top["format"] == "pdf"
    assert top["lines"] is None and top["page"] in (1, [1, 2])
    shown = run("search", "mortar shells flying into the city at night", "-k", "1", *args(mixed))
    assert "Seige_of_Vicksburg_Sample_OCR.pdf p. 1" in shown.stdout or "pp. 1-2" in shown.stdout


def test_a_search_finds_a_word_paragraph_and_markdown_keeps_its_lines(mixed):
    hits = search(mixed, "Heading 1 body text", "-k", "5", "--mode", "lexical")
    assert any(h["source"] == "par-known-styles.docx" and h["format"] == "docx" for h in hits)
    notes = search(mixed, "line from Kashgar through Torugart to Andijan", "-k", "1")[0]
    assert notes["source"] == "notes.md" and notes["lines"] == [12, 12]  # as the file numbers them


def test_russian_words_are_found_in_any_of_their_forms(mixed):
    hits = search(mixed, "железная дорога", "--mode", "lexical", "-k", "3")
    assert hits and {h["source"] for h in hits} == {"kabar-ru.html"}
    assert any("строительство железной дороги" in h["text"] for h in hits)  # other forms
    assert any("на железных дорогах" in h["text"] for h in hits)
    assert hits[0]["url"] == "https://example.kg/ru/news/2023/05/19/railway"


def test_a_chinese_query_finds_the_chinese_railway_paragraph(mixed):
    hits = search(mixed, "中吉乌铁路", "--mode", "lexical", "-k", "3")
    assert hits and hits[0]["source"] == "xinhua-zh.html"
    assert "中吉乌铁路项目" in hits[0]["text"]


def test_since_a_year_counts_what_it_leaves_out(mixed):
    result = run("search", RAILWAY_QUESTION, "--since", "2023", "--json", *args(mixed))
    assert result.exit_code == 0
    dates = [r["date"] for r in json.loads(result.stdout)["results"]]
    assert dates and all(d >= "2023-01-01" for d in dates)
    assert "undated passage" in result.stderr


def test_the_railway_statements_are_listed_once_across_formats(mixed):
    """Acceptance 2: the same statements as seeds, a saved page, a PDF and a Word file:
    each listed once, its copies named under `also in`."""
    hits = search(mixed, RAILWAY_QUESTION, "-k", "10")
    texts = [h["text"] for h in hits]
    assert len(texts) == len(set(texts))
    by_text = {h["text"]: h for h in hits}
    japarov = next(t for t in texts if "welcomes more Chinese enterprises" in t)
    copies = {c["source"] for c in by_text[japarov]["also_in"]} | {by_text[japarov]["source"]}
    assert copies == {"003_605b4ee0f7fb2dfc.txt", "xinhua-kyrgyzstan.html"}
    railways = next(t for t in texts if "economy and trade, railways, pandemic" in t)
    copies = {c["source"] for c in by_text[railways]["also_in"]} | {by_text[railways]["source"]}
    assert copies == {"000_2bc4590b1f4df84e.txt", "joint-statement.pdf"}
    pdf_copy = next(
        c for c in [by_text[railways], *by_text[railways]["also_in"]]
        if c["source"] == "joint-statement.pdf"
    )  # fmt: skip
    assert pdf_copy["page"] == 1 and pdf_copy["lines"] is None
    shown = run("search", RAILWAY_QUESTION, "-k", "10", *args(mixed)).stdout
    assert "also in: " in shown and "joint-statement.pdf p. 1" in shown


def test_every_bad_input_is_one_warning_and_the_index_stays_good(mixed, tmp_path: Path):
    """Acceptance 3: each bad file gets its one-line warning (in `status` too), the rest
    is indexed, nothing crashes, and `verify` passes."""
    corpus, index = tmp_path / "seeds", tmp_path / "index"
    shutil.copytree(mixed[0], corpus)
    shutil.copytree(mixed[1], index)
    crazy = (FIXTURES / "pdf" / "crazyones.pdf").read_bytes()
    hostile = (
        "<html><head><title>Hostile</title><script>alert('SCRIPTRUN')</script></head><body>"
        "<article><p onclick=\"alert('HANDLERRUN')\">The delegation discussed grain exports "
        "through the port of Aktau with the ministry on Tuesday afternoon.</p>"
        "<p><img src=x onerror=\"alert('IMGRUN')\"><a href=\"javascript:alert('LINKRUN')\">"
        "details of the grain corridor agreement and its tariffs for next season</a></p>"
        "</article></body></html>"
    )
    bad = {
        "locked.pdf": ((FIXTURES / "pdf" / "encrypted-file.pdf").read_bytes(), "encrypted"),
        "scan.pdf": ((FIXTURES / "pdf" / "scanned.pdf").read_bytes(), "no text layer"),
        "cut.pdf": (crazy[:900], "damaged or truncated"),
        "bomb.docx": (
            zip_archive({"[Content_Types].xml": b"<x/>", "word/document.xml": b"\0" * (300 << 20)}),
            "zip bomb",
        ),
        "notzip.docx": (b"plain text, not a zip", "not a Word (.docx) file"),
        "menu.html": (b"<html><body><nav><a href='/'>Home</a></nav></body></html>", "no main text"),
        "memo.rtf": (b"{\\rtf1 hello}", "unsupported format .rtf"),
    }
    for name, (data, _) in bad.items():
        (corpus / name).write_bytes(data)
    (corpus / "hostile.html").write_text(hostile, encoding="utf-8")
    (corpus / "statement.docx").write_bytes(crazy)  # a PDF named .docx
    result = run("index", "--seeds", str(corpus), "--index", str(index))
    assert result.exit_code == 0, result.output
    status = run("status", *["--seeds", str(corpus), "--index", str(index)]).stdout
    for name, (_, reason) in bad.items():
        lines = [line for line in status.splitlines() if f"skipping {name}:" in line]
        assert len(lines) == 1 and reason in lines[0], (name, lines)
        assert len([w for w in result.stderr.splitlines() if f"skipping {name}:" in w]) == 1
    assert "statement.docx: its content is PDF, not Word (.docx); read as such" in result.stderr
    assert run("verify", "--index", str(index)).exit_code == 0
    where = ["--seeds", str(corpus), "--index", str(index)]
    found = run("search", "grain exports through Aktau", "--json", "-k", "1", *where)
    top = json.loads(found.stdout)["results"][0]
    assert top["source"] == "hostile.html"
    everything = json.dumps(
        json.loads(run("show", "hostile.html", "1", "-C", "5", "--json", *where).stdout)
    )
    for payload in ("SCRIPTRUN", "HANDLERRUN", "IMGRUN", "LINKRUN", "alert", "javascript"):
        assert payload not in everything
    crazy_hits = search((corpus, index), "round pegs in the square holes", "-k", "1")
    assert crazy_hits[0]["source"] == "statement.docx" and crazy_hits[0]["format"] == "pdf"
    # Still every good document.
    manifest = json.loads(run("status", "--json", *where).stdout)
    assert manifest["documents"] == 5 + len(DOCUMENTS) + 2
