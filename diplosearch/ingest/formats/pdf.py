"""PDF: the text layer, by pypdf, as paragraphs that know their pages.

pypdf (pure Python, maintained, no system library) gives each page's text in reading
order, line by line. What a reader of the printed page ignores is taken out: running
headers and footers (a line at the top or bottom of most pages, alike but for a page
number) and page numbers. Words hyphenated at a line end are joined ("dan-" + "gerous"),
lines are joined into paragraphs (Chinese and Japanese lines without a space), and a
paragraph that runs on over a page break stays one paragraph, each part of it knowing
its page. Pages are read one at a time, so memory stays bounded on a 1,000-page report.
"""

from __future__ import annotations

import io
import re
import statistics
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from diplosearch.ingest.formats import Extracted, ExtractionError, PageMarks, clip, quiet

#: Lines at each end of a page that may be a running header or footer.
EDGE_LINES = 2
#: Share of pages a line must appear on (at an edge) to count as a running header.
RUNNING_SHARE = 0.5
#: Most pages read from one PDF: beyond this, the rest is left out with a warning.
MAX_PAGES = 5000
_NUMBER_RE = re.compile(r"\d+")
_NOT_LETTERS_RE = re.compile(r"[\W\d_]+")
_ROMAN = r"m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
_PAGE_NUMBER_RE = re.compile(
    rf"^\W*(?:(?:page|p\.|стр\.?|страница|第)\s*)?(?:\d{{1,4}}|(?=[ivxlcdm])(?:{_ROMAN}))"
    r"(?:\s*(?:of|/|из)\s*\d+)?\s*页?\W*$",
    re.IGNORECASE,
)
#: A line that ends a sentence (closing quotes and brackets allowed after the stop).
_ENDS_SENTENCE_RE = re.compile(r"[.!?。！？:;…][\"'”’»)\]」』]*$")
#: A word broken at the line's end: a letter, then a hyphen.
_HYPHEN_END_RE = re.compile(r"(\w)-$")
_SPACE_RE = re.compile(r"[ \t\u00a0]+")
#: Scripts written without spaces between words: their lines join without one.
_UNSPACED_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


@dataclass
class _Paragraph:
    #: The paragraph's text in pieces (joined once: a paragraph may be thousands of lines).
    parts: list[str] = field(default_factory=list)
    length: int = 0
    #: (offset in text, page) where each page's part begins.
    marks: list[tuple[int, int]] = field(default_factory=list)

    def add(self, line: str, page: int) -> None:
        last = self.parts[-1] if self.parts else ""
        if not last:
            start = 0
        elif _HYPHEN_END_RE.search(last[-2:]) and line[:1].islower():
            self.parts[-1] = last[:-1]  # "dan-" + "gerous"
            start = self.length - 1
        elif _UNSPACED_RE.match(last[-1]) and _UNSPACED_RE.match(line[0]):
            start = self.length  # "中吉乌铁" + "路": one word, split by the line's end
        else:
            self.parts.append(" ")
            start = self.length + 1
        self.parts.append(line)
        self.length = start + len(line)
        if not self.marks or self.marks[-1][1] != page:
            self.marks.append((start, page))

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def ends_sentence(self) -> bool:
        return bool(self.parts) and bool(_ENDS_SENTENCE_RE.search(self.parts[-1][-4:]))


def _reader(data: bytes) -> Any:
    import pypdf
    from pypdf.errors import DependencyError

    quiet("pypdf")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("the PDF is encrypted (password-protected); it cannot be read")
        reader.pages[0]
    except ExtractionError:
        raise
    except (NotImplementedError, DependencyError) as exc:  # an encryption it cannot undo
        raise ExtractionError(
            f"the PDF is encrypted in a way that cannot be read ({clip(exc)})"
        ) from exc
    except Exception as exc:
        raise ExtractionError(f"the PDF is damaged or truncated ({clip(exc)})") from exc
    return reader


def _page_lines(reader: Any, warnings: list[str]) -> list[list[str]]:
    """Each page's non-blank lines, white space collapsed."""
    pages: list[list[str]] = []
    total = len(reader.pages)
    if total > MAX_PAGES:
        warnings.append(f"only the first {MAX_PAGES:,} of its {total:,} pages are read")
    failed = 0
    for number in range(min(total, MAX_PAGES)):
        try:
            text = reader.pages[number].extract_text() or ""
        except Exception:
            failed += 1
            text = ""
        text = unicodedata.normalize("NFC", text)  # before offsets are taken (see extract)
        pages.append([s for line in text.splitlines() if (s := _SPACE_RE.sub(" ", line).strip())])
    if failed:
        warnings.append(f"the text of {failed} page{'s' if failed > 1 else ''} could not be read")
    return pages


def _key(line: str) -> str:
    """A line as running headers are compared: its letters only ("THE SIEGE. 49" and
    "50 THE SIEGE." alike)."""
    return _NOT_LETTERS_RE.sub("", line).lower()


def _running(pages: list[list[str]]) -> set[str]:
    """Lines (by :func:`_key`) at a page's top or bottom on most pages: running headers
    and footers. A line with numbers counts only where its number moves with the page
    (a page number in a header); "Article 1", "Article 2" heading pages are content."""
    if len(pages) < 3:
        return set()
    seen: Counter[str] = Counter()
    offsets: defaultdict[str, Counter[int | None]] = defaultdict(Counter)
    for number, lines in enumerate(pages):
        edges = {line: None for line in (*lines[:EDGE_LINES], *lines[-EDGE_LINES:])}
        for key, line in {_key(line): line for line in edges}.items():
            seen[key] += 1
            numbers = [int(n) for n in _NUMBER_RE.findall(line)]
            offsets[key][numbers[-1] - number if numbers else None] += 1
    running = set()
    for key, count in seen.items():
        if not key or count < RUNNING_SHARE * len(pages):
            continue
        # The same text (no number, or a fixed one such as a year) or a page number.
        most, times = offsets[key].most_common(1)[0]
        if most is None or times >= RUNNING_SHARE * len(pages) or len(offsets[key]) <= 2:
            running.add(key)
    return running


def _content(pages: list[list[str]]) -> list[list[str]]:
    """Pages without running headers, footers and page numbers."""
    running = _running(pages)
    cleaned: list[list[str]] = []
    for lines in pages:
        keep = list(lines)
        top = range(min(EDGE_LINES, len(keep)))
        for index in {*top, *range(max(0, len(keep) - EDGE_LINES), len(keep))}:
            line = keep[index]
            if _PAGE_NUMBER_RE.match(line) or _key(line) in running:
                keep[index] = ""
        cleaned.append([line for line in keep if line])
    return cleaned


def _paragraphs(pages: list[list[str]]) -> list[_Paragraph]:
    """Lines joined into paragraphs: a paragraph ends at a line that ends a sentence and
    stops short of the page's full width. After a finished paragraph, a run of short
    capitalised lines that end no sentence, before a line of text, are headings, each a
    paragraph (a run of short lines that continue each other is a narrow column). A
    paragraph open at a page's end goes on at the next page's top."""
    widths = [len(line) for lines in pages for line in lines]
    full = statistics.quantiles(widths, n=10)[-1] if len(widths) >= 10 else max(widths, default=0)
    flat = [(number, line) for number, lines in enumerate(pages, start=1) for line in lines]

    def short(index: int) -> bool:
        return 0 <= index < len(flat) and len(flat[index][1]) < 0.6 * full

    def heading_run(index: int) -> int:
        """How many lines from ``index`` are a run of headings: short lines that end no
        sentence and begin with a capital or a digit (a title block: title, dateline,
        subtitle), followed by a line of text. 0 if they are not."""
        end = index
        while short(end) and not _ENDS_SENTENCE_RE.search(flat[end][1]):
            line = flat[end][1]
            starts = line[:1].isupper() or line[:1].isdigit() or bool(_UNSPACED_RE.match(line))
            if not starts or line.endswith((",", "，")):
                return 0
            end += 1
        return end - index if end < len(flat) and not short(end) else 0

    paragraphs: list[_Paragraph] = []
    current = _Paragraph()
    headings = 0
    for index, (number, line) in enumerate(flat):
        ends = bool(_ENDS_SENTENCE_RE.search(line))
        if not headings and (not current.parts or current.ends_sentence):
            headings = heading_run(index)
        if headings:
            headings -= 1
            if current.parts:
                paragraphs.append(current)
            heading = _Paragraph()
            heading.add(line, number)
            paragraphs.append(heading)
            current = _Paragraph()
            continue
        current.add(line, number)
        if ends and len(line) < 0.8 * full:
            paragraphs.append(current)
            current = _Paragraph()
    if current.parts:
        paragraphs.append(current)
    return paragraphs


def _date(value: object) -> str | None:
    """An ISO date from a PDF date (``D:20230518...``), only if it is a whole date."""
    match = re.match(r"^(?:D:)?(\d{4})(\d{2})(\d{2})", value) if isinstance(value, str) else None
    return f"{match[1]}-{match[2]}-{match[3]}" if match else None


def extract(data: bytes) -> Extracted:
    """The PDF's text as paragraphs with their pages; :class:`ExtractionError` for one
    that is encrypted, damaged or has no text layer (a scan: OCR is not supported)."""
    reader = _reader(data)
    warnings: list[str] = []
    pages = _content(_page_lines(reader, warnings))
    if not any(pages):
        raise ExtractionError("the PDF has no text layer (a scan?); OCR is not supported")
    lines: list[str] = []
    marks: list[PageMarks] = []
    for paragraph in _paragraphs(pages):
        lines += [paragraph.text, ""]
        marks += [tuple(paragraph.marks), ((0, paragraph.marks[-1][1]),)]
    try:
        info = reader.metadata or {}
        title = info.get("/Title")
        created = info.get("/CreationDate")
    except Exception:
        title = created = None
    title = " ".join(title.split()) if isinstance(title, str) and title.strip() else None
    return Extracted(
        format="pdf",
        text="\n".join(lines),
        title=title,
        fallback_date=_date(created),
        pages=tuple(marks),
        warnings=tuple(warnings),
    )
