"""Split a document into cited paragraph chunks.

A chunk is a paragraph, or a sentence-aligned piece of a paragraph too long for the model's
window (the model would otherwise truncate it silently). Every chunk keeps the citation of
the paragraph it came from: paragraph number, line range, the heading or sub-article it
falls under and that report's date. Headings -- a document's title, a digest's report
headlines, section headings such as "THE NAVY." or "(c) Agriculture and forests." -- are
carried by every chunk below them instead of being chunks of their own: as chunks they
match their topic perfectly and say nothing. Every other paragraph is a chunk, so no text
is dropped but page furniture (comment forms, share buttons).
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from diplosearch.chunks import Chunk, Document
from diplosearch.ingest import dates, metadata
from diplosearch.ingest.formats import Extracted, PageMarks, page_span
from diplosearch.ingest.sentences import sentence_spans
from diplosearch.ingest.speakers import speakers_of_paragraphs

#: A block whose lines (all but the last) are at most this long is hard-wrapped prose and is
#: joined into one paragraph; otherwise each line is a paragraph of its own (as in files that
#: separate paragraphs by single newlines).
WRAP_WIDTH = 100

_HAS_WORD_RE = re.compile(r"\w")

#: Paragraphs longer than this (in characters) are cut into token windows in one linear
#: pass, without sentence splitting or speaker rules, which would take minutes on them.
HUGE_PARAGRAPH = 20_000
#: First guess of a window's size: news English averages ~4-5 characters per word piece.
WINDOW_CHARS_PER_TOKEN = 4

TokenCounter = Callable[[str], int]
#: Most headings in a row ("Part II", "AGRICULTURE", "Forests"); more short lines in a row
#: are a list.
MAX_HEADING_RUN = 3


@dataclass
class _Paragraph:
    number: int
    text: str
    #: (offset in ``text``, 1-based line number) of every source line joined into ``text``.
    lines: list[tuple[int, int]] = field(default_factory=list)

    @property
    def single_line(self) -> bool:
        return len(self.lines) == 1

    def line_of(self, offset: int) -> int:
        starts = [start for start, _ in self.lines]
        return self.lines[max(0, bisect.bisect_right(starts, offset) - 1)][1]


def split_lines(text: str) -> list[str]:
    """Lines as an editor numbers them: ``\\r\\n``, ``\\r`` and ``\\n`` each end one line."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _blocks(lines: list[str], skip: int | None) -> list[list[tuple[int, str]]]:
    """Runs of non-blank lines, as (1-based line number, line)."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        if index == skip or not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        current.append((index + 1, line))
    if current:
        blocks.append(current)
    return blocks


def _paragraphs(blocks: list[list[tuple[int, str]]]) -> list[_Paragraph]:
    paragraphs: list[_Paragraph] = []

    def add(run: list[tuple[int, str]]) -> None:
        paragraph = _Paragraph(number=len(paragraphs) + 1, text="")
        parts: list[str] = []
        offset = 0
        for lineno, line in run:
            stripped = line.strip()
            paragraph.lines.append((offset, lineno))
            parts.append(stripped)
            offset += len(stripped) + 1
        paragraph.text = " ".join(parts)
        paragraphs.append(paragraph)

    for block in blocks:
        wrapped = len(block) > 1 and all(len(line) <= WRAP_WIDTH for _, line in block[:-1])
        run: list[tuple[int, str]] = []
        for lineno, line in block:
            # Markdown headings are paragraphs of their own even inside a wrapped block.
            if not wrapped or metadata.markdown_heading(line) is not None:
                if run:
                    add(run)
                    run = []
                add([(lineno, line)])
            else:
                run.append((lineno, line))
        if run:
            add(run)
    return paragraphs


def _heading_text(paragraph: _Paragraph) -> str | None:
    """A headline, the kind of line that titles a document or a digest's report."""
    if not paragraph.single_line:
        return None
    md = metadata.markdown_heading(paragraph.text)
    if md is not None:
        return md
    return paragraph.text if metadata.looks_like_heading(paragraph.text) else None


def _section_heading(paragraphs: list[_Paragraph], index: int) -> str | None:
    """The heading ``paragraphs[index]`` is, if it heads the text that follows it: a
    headline, a line in capitals ("THE NAVY.") or a numbered title ("(c) Agriculture
    and forests.") with a paragraph of text after it. A numbered line between other
    numbered lines, or before one no longer than itself, is a list item, not a heading."""
    paragraph = paragraphs[index]
    if not paragraph.single_line or index + 1 >= len(paragraphs):
        return None
    md = metadata.markdown_heading(paragraph.text)
    if md is not None:
        return md
    if metadata.parse_dateline(paragraph.text) is not None:
        return None  # "BISHKEK, October 26, 2023": a place and date, not a topic
    shape = metadata.heading_shape(paragraph.text)
    if shape is None:
        return None
    # Headings may come in a run ("Arts & Humanities", then "ARTS"): the run must lead to
    # text. A longer run of short lines is a list, not headings.
    run = index + 1
    while (
        run < len(paragraphs)
        and run - index <= MAX_HEADING_RUN
        and paragraphs[run].single_line
        and metadata.heading_shape(paragraphs[run].text) in ("headline", "capitals")
        and metadata.parse_dateline(paragraphs[run].text) is None
    ):
        run += 1
    if (
        run >= len(paragraphs)
        or run - index > MAX_HEADING_RUN
        or not _HAS_WORD_RE.search(paragraphs[run].text)  # no passage for it to head
    ):
        return None
    stop = metadata.parse_dateline(paragraphs[run].text)
    if stop is not None and stop.opens_story:
        return None  # the run ends in a digest report's headline: that heads the text
    following = paragraphs[index + 1]
    if shape == "numbered":
        before = paragraphs[index - 1].text if index > 0 else ""
        if len(following.text) < 2 * len(paragraph.text) or (
            metadata.heading_shape(before) == "numbered"
        ):
            return None
    return paragraph.text


def _word_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]


def _units(text: str, count: TokenCounter, limit: int) -> list[tuple[int, int, int]]:
    """(start, end, tokens) units no longer than ``limit``: sentences, else words, else slices."""
    units: list[tuple[int, int, int]] = []
    for start, end in sentence_spans(text):
        tokens = count(text[start:end])
        if tokens <= limit:
            units.append((start, end, tokens))
            continue
        for word_start, word_end in _word_spans(text, start, end):
            tokens = count(text[word_start:word_end])
            if tokens <= limit:
                units.append((word_start, word_end, tokens))
                continue
            # A "word" longer than the window (a URL, a run without spaces): every character
            # is at most one word piece, so slices of ``limit`` characters always fit.
            for piece in range(word_start, word_end, limit):
                piece_end = min(piece + limit, word_end)
                units.append((piece, piece_end, count(text[piece:piece_end])))
    return units


def _windows(text: str, count: TokenCounter, limit: int) -> list[tuple[int, int]]:
    """Consecutive spans of at most ``limit`` tokens, cut at white space where there is
    some, in one linear pass: for paragraphs too long to sentence-split (a 50 MB line)."""
    spans: list[tuple[int, int]] = []
    position, length = 0, len(text)
    while position < length:
        while position < length and text[position].isspace():
            position += 1
        if position >= length:
            break
        size = WINDOW_CHARS_PER_TOKEN * limit
        while True:
            end = min(length, position + size)
            if end < length:
                cut = text.rfind(" ", position + size // 2, end)
                end = cut if cut > position else end
            if count(text[position:end]) <= limit or end - position <= 1:
                break
            size = max(1, (end - position) * 3 // 4)
        piece_end = end
        while piece_end > position and text[piece_end - 1].isspace():
            piece_end -= 1
        spans.append((position, piece_end))
        position = end
    return spans


def split_spans(text: str, count: TokenCounter, limit: int) -> list[tuple[int, int]]:
    """Character spans of ``text`` that each fit in ``limit`` tokens, cut at sentence ends.

    Greedy packing sums the units' token counts; that equals the count of the joined text
    for word-piece tokenizers, which split on whitespace before anything else.
    """
    if len(text) > HUGE_PARAGRAPH:
        return _windows(text, count, limit)
    if count(text) <= limit:
        return [(0, len(text))]
    spans: list[tuple[int, int]] = []
    piece_start, piece_end, piece_tokens = None, 0, 0
    for start, end, tokens in _units(text, count, limit):
        if piece_start is not None and piece_tokens + tokens > limit:
            spans.append((piece_start, piece_end))
            piece_start = None
        if piece_start is None:
            piece_start, piece_tokens = start, 0
        piece_end = end
        piece_tokens += tokens
    if piece_start is not None:
        spans.append((piece_start, piece_end))
    return spans


def _document_dates(text: str, header_date: str | None) -> tuple[dt.date | None, dt.date | None]:
    """(publication date, reference date for undated datelines)."""
    if header_date:
        date = metadata.parse_iso(header_date)
        return date, date
    return None, metadata.first_full_date(text)


#: Paragraphs at a document's start where a written date is taken as its date (a
#: dateline, a statement's date line) when nothing else dates it, and how far into each
#: the date may begin: a dateline's date comes first ("СИАНЬ, 19 мая 2023 года. ..."),
#: while "... in force until 31 December 2099" names some other day.
DATE_PARAGRAPHS = 3
DATE_AT_START = 40
#: A file's own title that is a file name or a converter's label, not a title.
_FILE_TITLE_RE = re.compile(r"(?i)\.(pdf|docx?|rtf|txt|html?)$|^microsoft word\b|^untitled\b")


def _as_extracted(source: str, content: str | Extracted) -> Extracted:
    if isinstance(content, Extracted):
        return content
    return Extracted(format="markdown" if source.lower().endswith(".md") else "text", text=content)


def parse_document(
    source: str, content: str | Extracted, count_tokens: TokenCounter, max_tokens: int
) -> Document:
    """Chunk one document, given as its text or as extracted from its file (see
    ingest/formats). ``count_tokens`` and ``max_tokens`` describe the model's window
    (word pieces, special tokens excluded)."""
    extracted = _as_extracted(source, content)
    text = extracted.text
    lines = split_lines(text)
    front: dict[str, object] = {}
    if extracted.format == "markdown":
        front, lines = metadata.front_matter(lines)
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    header = (
        metadata.parse_header(lines[header_index])
        if header_index is not None and extracted.lined
        else None
    )
    paragraphs = _paragraphs(_blocks(lines, header_index if header else None))

    # The article ends where a web page's comment form begins; furniture is dropped.
    for index, paragraph in enumerate(paragraphs):
        if metadata.starts_comment_form(paragraph.text):
            paragraphs = paragraphs[:index]
            break
    paragraphs = [p for p in paragraphs if not metadata.is_boilerplate(p.text)]

    header_date, header_title = header if header else (None, "")
    # Front matter and the file's metadata say what the text may not: their title and
    # date come first (a PDF's own title only when the text gives none: it is often
    # the name of the file it was printed from).
    front_title = front.get("title")
    front_title = " ".join(front_title.split()) if isinstance(front_title, str) else None
    file_title = extracted.title
    if file_title is not None and _FILE_TITLE_RE.search(file_title):
        file_title = None
    if extracted.format != "pdf":
        front_title = front_title or file_title
    header_date = metadata.front_date(front.get("date")) or extracted.date or header_date
    publication, reference = _document_dates(text, header_date)
    if reference is None and extracted.language not in (None, "en"):
        reference = dates.first_date(text[:5000], extracted.language)
    datelines = [metadata.parse_dateline(p.text) for p in paragraphs]

    # A one-word header title ("Politics") is a desk label; the headline is then the first
    # paragraph when it looks like one.
    title: str | None = header_title if len(header_title.split()) > 1 else None
    first_heading = _heading_text(paragraphs[0]) if paragraphs else None
    title_paragraph = None
    # A first heading is the title, unless the file names another: then it heads a section.
    if title is None and first_heading is not None and front_title in (None, first_heading):
        title, title_paragraph = first_heading, paragraphs[0].number
    title = front_title or title or header_title or file_title or None

    if publication is None:
        publication = next(
            (
                metadata.resolve_dateline(d, reference)
                for d in datelines
                if d is not None and d.opens_story
            ),
            None,
        )
    if publication is None:
        publication = next(
            (
                date
                for p in paragraphs[:DATE_PARAGRAPHS]
                if (date := dates.first_date(p.text, extracted.language, within=DATE_AT_START))
                and date <= dt.date.today()  # a document is not written after today
            ),
            None,
        )
    if publication is None and extracted.fallback_date:
        publication = metadata.parse_iso(extracted.fallback_date)
    doc_date = publication.isoformat() if publication else None
    pages = extracted.pages

    chunks: list[Chunk] = []
    section: str | None = None
    headed = -1  # index of the last paragraph taken as a section heading
    article: str | None = None  # the headline of the digest report we are in
    section_date = doc_date
    for index, paragraph in enumerate(paragraphs):
        # A headline followed by a dateline opens a report of its own (a digest's sub-article).
        following = datelines[index + 1] if index + 1 < len(datelines) else None
        heading = _heading_text(paragraph) if index > 0 else None
        first_md = metadata.markdown_heading(paragraph.text) if index == 0 else None
        if first_md is not None and paragraph.number != title_paragraph:
            section, section_date, article = first_md, doc_date, None  # a Word file's heading
            continue
        if heading is not None and following is not None and following.opens_story:
            section = article = heading
            resolved = metadata.resolve_dateline(following, reference)
            section_date = resolved.isoformat() if resolved else doc_date
            continue  # shown as the section of every chunk below it, not a chunk itself
        if heading is not None and metadata.markdown_heading(paragraph.text) is not None:
            section, section_date, article = heading, doc_date, None
            continue
        if index > 0 and (titled := _section_heading(paragraphs, index)) is not None:
            # A heading says what the text under it is about, and nothing itself: it is
            # the context of every chunk below it (shown, and searched as context). A
            # heading right under another one is its subheading, and a digest's report
            # keeps its headline above its own headings.
            if headed == index - 1 and section is not None:
                section = f"{section} › {titled}"
            else:
                section = f"{article} › {titled}" if article else titled
            headed = index
            continue
        if paragraph.number == title_paragraph or not _HAS_WORD_RE.search(paragraph.text):
            continue
        spans = split_spans(paragraph.text, count_tokens, max_tokens)
        for part, (start, end) in enumerate(spans, start=1):
            chunks.append(
                Chunk(
                    source=source,
                    paragraph=paragraph.number,
                    part=part,
                    parts=len(spans),
                    line_start=paragraph.line_of(start),
                    line_end=paragraph.line_of(end - 1),
                    section=section,
                    date=section_date,
                    text=paragraph.text[start:end],
                    pages=_pages(pages, paragraph, start, end),
                )
            )
    huge = {p.number for p in paragraphs if len(p.text) > HUGE_PARAGRAPH}
    spoken = speakers_of_paragraphs(
        [("" if c.paragraph in huge else c.text, c.section) for c in chunks]
    )
    chunks = [
        replace(
            c,
            speakers=tuple(names),
            sentences=((0, len(c.text)),) if c.paragraph in huge else tuple(sentence_spans(c.text)),
        )
        for c, names in zip(chunks, spoken, strict=True)
    ]
    return Document(
        source=source,
        title=title,
        date=doc_date,
        chunks=tuple(chunks),
        format=extracted.format,
        language=extracted.language,
        url=extracted.url,
    )


def _pages(
    pages: tuple[PageMarks, ...] | None, paragraph: _Paragraph, start: int, end: int
) -> tuple[int, int] | None:
    """The (first, last) page of characters ``start`` to ``end`` of ``paragraph``: for a
    PDF paragraph (one line of the extracted text), exactly the pages its part is on."""
    if not pages:
        return None
    first_line, last_line = paragraph.line_of(start), paragraph.line_of(end - 1)
    if not 1 <= first_line <= last_line <= len(pages):
        return None
    if paragraph.single_line:
        return page_span(pages[first_line - 1], start, end)
    return pages[first_line - 1][0][1], pages[last_line - 1][-1][1]
