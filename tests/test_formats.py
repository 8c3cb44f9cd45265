"""Reading each kind of file: web pages, PDFs, Word files, their dates and languages, and
every bad input a researcher's folder holds. Real documents from the test suites of
trafilatura, pypdf and python-docx (tests/fixtures/README.md), no model needed."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from diplosearch.ingest import dates, language
from diplosearch.ingest.chunker import parse_document
from diplosearch.ingest.extractor import Extractor
from diplosearch.ingest.formats import Extracted, ExtractionError, extract, pdf
from diplosearch.ingest.formats import page_span as pdf_span
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures"
RAILWAY = FIXTURES / "railway"


def read(path: Path) -> Extracted:
    return extract(path.name, path.read_bytes())


def chunked(path: Path):
    return parse_document(path.name, read(path), lambda text: len(text.split()), 256)


# -- web pages ------------------------------------------------------------------------


def test_a_news_page_gives_its_article_and_metadata_and_nothing_else():
    page = read(RAILWAY / "xinhua-kyrgyzstan.html")
    assert page.format == "html"
    assert (
        page.title == "Xi urges China, Kyrgyzstan to promote high-quality Belt and Road cooperation"
    )
    assert page.date == "2024-07-04"
    assert page.url == "https://english.news.cn/20240704/xi-kyrgyzstan/c.html"
    assert page.language == "en"
    assert "Kyrgyzstan welcomes more Chinese enterprises to invest" in page.text
    # Scripts, styles, handlers, navigation, cookie banner, related links, comment form
    # and footer: none of their text is indexed.
    for furniture in (
        "SCRIPT TEXT", "STYLE TEXT", "alert", "onerror", "javascript", "cookies",
        "Related stories", "Leave a Reply", "Post Comment", "Copyright", "Business",
    ):  # fmt: skip
        assert furniture not in page.text, furniture


def test_a_page_in_windows_1251_is_read_by_its_declared_charset():
    page = read(RAILWAY / "kabar-ru.html")
    assert "строительство железной дороги Китай — Киргизия — Узбекистан" in page.text
    assert page.language == "ru"
    assert page.url == "https://example.kg/ru/news/2023/05/19/railway"
    assert "Все права защищены" not in page.text


def test_real_pages_from_trafilaturas_evaluation_set():
    reuters = read(FIXTURES / "web" / "reuters.com.parasite.html")
    assert reuters.title == "'Parasite' scores historic upset at SAG awards, boosting Oscar chances"
    assert reuters.author == "Jill Serjeant"
    assert reuters.url is not None and reuters.url.startswith("https://www.reuters.com/")
    assert "Despite an unknown cast," in reuters.text
    assert "Related Coverage" not in reuters.text and "4 Min Read" not in reuters.text
    russian = read(FIXTURES / "web" / "football.ua.podolski.html")
    assert russian.language == "ru" and russian.title == "Подольски завершил карьеру в сборной"
    chinese = read(FIXTURES / "web" / "xinhuanet.com.c_1125597921.html")
    assert chinese.language == "zh" and chinese.date == "2020-02-19"
    assert "关注新华网" not in chinese.text


def test_a_page_with_no_main_text_is_one_clear_error():
    page = (
        b"<html><head><title>Menu</title></head><body><nav><a href='/'>Home</a></nav></body></html>"
    )
    with pytest.raises(ExtractionError, match="no main text"):
        extract("menu.html", page)


# -- PDF ------------------------------------------------------------------------------


def test_a_real_ocr_pdf_loses_its_running_headers_and_keeps_words_whole():
    book = read(FIXTURES / "pdf" / "Seige_of_Vicksburg_Sample_OCR.pdf")
    assert "THE SIEGE OF VICKSBURG" not in book.text  # the running header of every page
    assert "it became too conspicuous and dangerous for use." in book.text  # "dan-" "gerous"
    assert "dan- gerous" not in book.text and "dan-gerous" not in book.text
    # A paragraph that runs over a page break is one paragraph whose parts know their
    # page: one line of the extracted text, with a mark where the next page begins.
    lines = book.text.split("\n")
    assert book.pages is not None and len(book.pages) == len(lines)
    spanning = [(line, marks) for line, marks in zip(lines, book.pages, strict=True) if line]
    across = [(line, marks) for line, marks in spanning if len(marks) > 1]
    assert across
    line, marks = across[0]
    assert marks[0][0] == 0 and marks[1][1] == marks[0][1] + 1
    assert pdf_span(marks, 0, 10) == (marks[0][1], marks[0][1])
    assert pdf_span(marks, 0, len(line)) == (marks[0][1], marks[1][1])
    assert pdf_span(marks, marks[1][0], len(line)) == (marks[1][1], marks[1][1])
    assert spanning[-1][1][-1][1] == 6


def test_the_joint_statement_pdf_reads_as_its_paragraphs_with_pages():
    statement = read(RAILWAY / "joint-statement.pdf")
    assert "CHINA DAILY |" not in statement.text
    assert "Page 1 of" not in statement.text
    seed = (REPO / "seeds" / "000_2bc4590b1f4df84e.txt").read_text(encoding="utf-8")
    wanted = (
        "Kyrgyzstan is willing to strengthen cooperation with China in such areas as the "
        "economy and trade, railways, pandemic response and security, he said."
    )
    assert wanted in seed and wanted in statement.text.split("\n")
    document = chunked(RAILWAY / "joint-statement.pdf")
    assert document.title == "Two-way talks eye greater teamwork"  # not "Microsoft Word - ..."
    assert document.date == "2022-09-15"  # its date line, not the file's creation date
    railway = next(c for c in document.chunks if c.text == wanted)
    assert railway.pages == (1, 1)
    assert {c.pages for c in document.chunks} >= {(1, 1), (2, 2)}


def test_a_pdf_title_and_date_line_are_read():
    document = chunked(FIXTURES / "pdf" / "crazyones.pdf")
    assert document.title == "The Crazy Ones"
    assert document.date == "1998-10-14"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: (FIXTURES / "pdf" / "encrypted-file.pdf").read_bytes(), "encrypted"),
        (lambda: (FIXTURES / "pdf" / "scanned.pdf").read_bytes(), "no text layer"),
        (lambda: (FIXTURES / "pdf" / "crazyones.pdf").read_bytes()[:900], "damaged or truncated"),
        (lambda: b"%PDF-1.4\n" + b"\x00" * 100, "damaged or truncated"),
    ],
    ids=["encrypted", "scanned", "truncated", "garbage"],
)
def test_a_pdf_that_cannot_be_read_says_why_in_one_line(make, message):
    with pytest.raises(ExtractionError, match=message) as caught:
        extract("statement.pdf", make())
    assert "\n" not in str(caught.value)


def test_a_thousand_page_pdf_is_read_whole_in_bounded_memory(tmp_path: Path):
    """Pages are read one at a time: the peak resident memory of reading 1,000 pages is
    reported by benchmarks/pdf_memory.py; here every page must be read."""
    sys.path.insert(0, str(RAILWAY))
    try:
        import make  # tests/fixtures/railway/make.py
    finally:
        sys.path.remove(str(RAILWAY))
    topics = ("trade", "energy", "transport", "customs", "water", "culture", "health")
    text = [
        f"Paragraph {n} on {topics[n % 7]} and {topics[n // 7 % 7]} says the railway line runs on."
        for n in range(23_000)
    ]
    data = make.pdf(text, header="LONG REPORT", info_title="Long report", created="20230101")
    path = tmp_path / "long.pdf"
    path.write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-c", (
            "import sys, resource; from pathlib import Path\n"
            "from diplosearch.ingest.formats import extract\n"
            "e = extract('long.pdf', Path(sys.argv[1]).read_bytes())\n"
            "print(max(m[-1][1] for m in e.pages), e.text.count('railway line runs on'))\n"
        ), str(path)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    last_page, paragraphs = map(int, result.stdout.split())
    assert last_page == 1000
    assert paragraphs == 23_000


def test_page_numbers_and_headers_are_recognised():
    assert pdf._PAGE_NUMBER_RE.match("Page 3 of 12")
    assert pdf._PAGE_NUMBER_RE.match("- 14 -")
    assert not pdf._PAGE_NUMBER_RE.match("14 countries signed")
    assert pdf._key("THE SIEGE OF VICKSBURG. 49") == pdf._key("50 THE SIEGE OF VICKSBURG.")


# -- Word ------------------------------------------------------------------------------


def test_a_word_readout_gives_title_headings_paragraphs_and_tables():
    readout = read(RAILWAY / "readout.docx")
    assert readout.format == "docx"
    assert readout.title == (
        "Qin Gang holds talks with foreign ministers of five Central Asian countries respectively"
    )
    assert "# Readout" in readout.text.split("\n")
    assert "Kyrgyzstan | Xi'an" in readout.text.split("\n")
    assert readout.fallback_date == "2023-04-27"  # core properties: used only if the text has none
    document = chunked(RAILWAY / "readout.docx")
    assert document.date == "2023-04-26"  # "On April 26, 2023, ..." in its first paragraph
    assert {c.section for c in document.chunks} >= {"Readout", "Meetings"}


def test_real_word_files_from_python_docx():
    styles = read(FIXTURES / "docx" / "par-known-styles.docx")
    assert "# Heading 1" in styles.text.split("\n")
    table = read(FIXTURES / "docx" / "tbl-having-applied-style.docx")
    assert "foo to you | and a hearty foo to you too sir!" in table.text


def zip_archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_word_zip_bomb_is_refused_before_it_is_unpacked():
    bomb = zip_archive({"[Content_Types].xml": b"<x/>", "word/document.xml": b"\0" * (300 << 20)})
    assert len(bomb) < 1 << 20
    with pytest.raises(ExtractionError, match="zip bomb"):
        extract("readout.docx", bomb)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not a zip archive", "not a Word"),
        (b"PK\x03\x04" + b"\x00" * 50, "not a Word document"),
        (zip_archive({"content.xml": b"<office/>"}), "without word/document.xml"),
        (zip_archive({"[Content_Types].xml": b"<x", "word/document.xml": b"<w:doc"}), "damaged"),
    ],
    ids=["text", "broken-zip", "other-zip", "broken-xml"],
)
def test_a_word_file_that_is_not_one_says_so_in_one_line(data, message):
    with pytest.raises(ExtractionError, match=message) as caught:
        extract("readout.docx", data)
    assert "\n" not in str(caught.value)


# -- what the bytes are, not what the name says ------------------------------------------


def test_a_file_whose_extension_lies_is_read_as_what_it_is():
    statement = (FIXTURES / "pdf" / "crazyones.pdf").read_bytes()
    as_word = extract("statement.docx", statement)
    assert as_word.format == "pdf" and "The Crazy Ones" in as_word.text
    assert as_word.warnings == ("its content is PDF, not Word (.docx); read as such",)
    page = (RAILWAY / "xinhua-kyrgyzstan.html").read_bytes()
    as_text = extract("page.txt", page)
    assert as_text.format == "html" and "<p>" not in as_text.text
    assert "<!DOCTYPE" not in (parse_document("page.txt", as_text, len, 256).title or "")


# -- languages and dates ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "date"),
    [
        ("СИАНЬ, 19 мая 2023 года. Председатель КНР", "ru", "2023-05-19"),
        ("新华社西安2023年5月18日电 国家主席习近平", "zh", "2023-05-18"),
        ("XI'AN, 18 May 2023 -- President Xi", "en", "2023-05-18"),
        ("Samarkand, September 15, 2022", "en", "2022-09-15"),
        ("СИАНЬ, 19 мая. Председатель", "ru", None),  # no year: none is guessed
        ("about 12 years 2023", "en", None),  # dateparser would read "12 years ago"
    ],
)
def test_written_dates_in_any_language(text, language, date):
    found = dates.first_date(text, language)
    assert (found.isoformat() if found else None) == date


def test_languages_are_detected_and_named():
    assert language.detect((RAILWAY / "xinhua-zh.html").read_text(encoding="utf-8")) == "zh"
    assert language.detect("Стороны договорились ускорить строительство железной дороги") == "ru"
    assert language.detect("ok") is None
    assert language.name("ky") == "Kyrgyz"


def test_the_russian_and_chinese_articles_are_dated_from_their_text():
    assert chunked(RAILWAY / "kabar-ru.html").date == "2023-05-19"
    assert chunked(RAILWAY / "xinhua-zh.html").date == "2023-05-18"


# -- the extraction cache ------------------------------------------------------------------


def test_an_unchanged_pdf_is_parsed_once(tmp_path: Path, monkeypatch):
    data = (FIXTURES / "pdf" / "Seige_of_Vicksburg_Sample_OCR.pdf").read_bytes()
    calls = []
    real = pdf.extract
    monkeypatch.setattr(pdf, "extract", lambda data: calls.append(1) or real(data))
    with Extractor(tmp_path / "extractions.sqlite") as extractor:
        first = extractor.extract("book.pdf", data, "a" * 64)
    with Extractor(tmp_path / "extractions.sqlite") as extractor:
        again = extractor.extract("renamed.pdf", data, "a" * 64)
    assert calls == [1]
    assert again == first
    (tmp_path / "extractions.sqlite").write_bytes(b"not a database" * 100)
    with Extractor(tmp_path / "extractions.sqlite") as extractor:
        assert extractor.extract("book.pdf", data, "a" * 64) == first
        assert any("unreadable" in n for n in extractor.notices)
    assert calls == [1, 1]


# -- found by an adversarial review: each once a traceback, a silent loss or a wrong fact --


def _crazy() -> bytes:
    return (FIXTURES / "pdf" / "crazyones.pdf").read_bytes()


def test_a_pdf_encrypted_for_its_owner_only_is_read():
    """Official documents are often AES-encrypted with an empty user password: they open
    without one, and need the `cryptography` package to decrypt."""
    import pypdf

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(_crazy()))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert "The Crazy Ones" in extract("locked.pdf", buffer.getvalue()).text


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data.replace(b"/Root", b"/Rooo"),  # no catalogue
        lambda data: data.replace(b"/Type /Pages", b"/Type /Pagez"),
        lambda data: data.replace(b"stream", b"streem"),
    ],
    ids=["no-root", "no-page-tree", "no-streams"],
)
def test_a_damaged_pdf_is_one_warning_whatever_pypdf_raises(damage, capfd):
    try:
        extracted = extract("damaged.pdf", damage(_crazy()))
    except ExtractionError as caught:
        assert "\n" not in str(caught) and len(str(caught)) < 300
    else:
        assert extracted.format == "pdf"
    assert capfd.readouterr().err == ""  # pypdf's log records never reach the terminal


def test_a_word_file_with_an_unknown_zip_version_is_one_warning():
    data = bytearray((RAILWAY / "readout.docx").read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 6] = 100  # "version needed to extract": 10.0
    with pytest.raises(ExtractionError) as caught:
        extract("readout.docx", bytes(data))
    assert "\n" not in str(caught.value)


def test_a_word_file_shows_insertions_and_content_controls():
    import docx
    from docx.oxml.parser import parse_xml

    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    document = docx.Document()
    document.add_paragraph("A visible paragraph about the corridor.")
    inserted = document.add_paragraph("Before ")
    inserted._p.append(
        parse_xml(f'<w:ins {w} w:id="1" w:author="x"><w:r><w:t>INSERTED</w:t></w:r></w:ins>')
    )
    body = document.element.body
    body.insert(
        len(body) - 1,
        parse_xml(
            f"<w:sdt {w}><w:sdtContent><w:p><w:r><w:t>Text in a content control.</w:t></w:r>"
            "</w:p></w:sdtContent></w:sdt>"
        ),
    )
    buffer = io.BytesIO()
    document.save(buffer)
    text = extract("readout.docx", buffer.getvalue()).text
    assert "Before INSERTED" in text
    assert "Text in a content control." in text


def test_a_web_page_with_a_stray_byte_keeps_its_charset():
    page = (
        '<html><head><meta charset="utf-8"><title>Berlin</title></head><body><article>'
        "<p>Die Regierung prüft Änderungen an dem Gesetz \udcff heute und morgen in Berlin.</p>"
        "<p>Ein zweiter Absatz mit genug Wörtern, damit er als Haupttext gilt.</p>"
        "</article></body></html>"
    ).encode("utf-8", "surrogateescape")
    read_page = extract("berlin.html", page)
    assert "prüft Änderungen" in read_page.text  # not "prĂĽft Ă„nderungen"
    stray = page.index(b"\xff")
    assert read_page.warnings == (
        f"invalid UTF-8 at byte {stray}; undecodable bytes shown as \N{REPLACEMENT CHARACTER}",
    )


def test_web_page_blocks_keep_their_words_apart_and_big_inline_images_lose_nothing():
    image = "data:image/png;base64," + "A" * 11_000_000
    page = (
        "<html><body><article><p>The railway agreement was discussed by the ministers today.</p>"
        f'<p><img src="{image}"></p>'
        "<table><tr><td><p>Tashkent</p><p>Andijan</p></td><td>Kashgar<br>Osh</td></tr></table>"
        "<p>The closing paragraph of the railway article, with enough words in it.</p>"
        "</article></body></html>"
    ).encode()
    text = extract("page.html", page).text
    assert "Tashkent Andijan | Kashgar Osh" in text.split("\n")
    assert "The closing paragraph of the railway article" in text


def test_chinese_lines_of_a_pdf_join_without_a_space():
    paragraph = pdf._Paragraph()
    paragraph.add("双方要加快推进中吉乌铁", 1)
    paragraph.add("路项目。", 2)
    assert paragraph.text == "双方要加快推进中吉乌铁路项目。"
    assert paragraph.marks == [(0, 1), (11, 2)]


def test_table_rows_are_passages_not_headings():
    text = "## Freight\n\nStation | 2024 | 2025\n\nKashgar | 120 | 150\n\nOsh | 80 | 95\n\nT.\n"
    document = parse_document("t.docx", Extracted(format="docx", text=text), len, 256)
    assert [c.text for c in document.chunks][:3] == [
        "Station | 2024 | 2025",
        "Kashgar | 120 | 150",
        "Osh | 80 | 95",
    ]


def test_a_date_the_text_mentions_later_is_not_the_documents():
    later = (
        "Agreement\n\nThe accord will remain in force until 31 December 2099, the minister said.\n"
    )
    assert parse_document("a.txt", later, len, 256).date is None
    spanish = "Acuerdo\n\nMadrid, 5 de mayo de 2023. El ministro firmó el acuerdo ferroviario.\n"
    assert parse_document("a.txt", spanish, len, 256).date == "2023-05-05"  # any language
    found = dates.first_date("Madrid, 5 de mayo de 2023.", "es")
    assert found is not None and found.isoformat() == "2023-05-05"


def test_every_reason_a_file_is_skipped_for_is_one_the_scan_remembers():
    """A reason the scan would not remember made every search read the file again and
    write a new generation: a library's message quoting 400 characters of a file, or
    one that no pattern of the scan knew (the safety net's "cannot be read as")."""
    from diplosearch.ingest import corpus

    long = ExtractionError("the Word document is damaged (no item named 'word/" + "a" * 400)
    assert len(str(long)) <= 300 and corpus.known_reason(str(long))
    escape = ExtractionError("the PDF is damaged or truncated (\x1b]0;title\x07)")
    assert corpus.known_reason(str(escape)) and "\x1b" not in str(escape)
    data = bytearray((RAILWAY / "readout.docx").read_bytes())
    data[data.index(b"PK\x01\x02") + 6] = 100
    with pytest.raises(ExtractionError) as caught:
        extract("readout.docx", bytes(data))
    assert corpus.known_reason(str(caught.value)), str(caught.value)
