"""Text and metadata from each kind of file a researcher keeps: plain text, Markdown, web
pages, PDFs and Word documents.

Every extractor returns an :class:`Extracted`: the document as text, one paragraph per
block of lines, plus what the file itself says about it (title, date, canonical URL,
author) and, for a PDF, the pages each line of that text comes from. The chunker then
treats every format alike, so headings, datelines, speakers and syndication work the same
on a PDF as on the scraped text of the seeds.

A file that cannot be read as what it is (an encrypted PDF, a scanned one, a Word file
that is not a zip) raises :class:`ExtractionError`, whose message is the one line the user
sees; the file is skipped and the rest of the corpus indexed. What a file's bytes are
decides how it is read, not its name: a PDF named ``.docx`` is read as a PDF, with a
warning saying so.
"""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from diplosearch.errors import CorpusError

#: Bump when an extractor's output changes: cached extractions of older versions are
#: extracted again.
EXTRACTOR_VERSION = "1"

#: File endings read as documents, and the format each is read as.
FORMATS = {
    ".txt": "text",
    ".md": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
#: Formats whose line numbers are the file's own (a citation's ``lines``).
LINED = ("text", "markdown")
#: Formats whose files are not text: the corpus scan does not judge them by their bytes.
BINARY_FORMATS = ("pdf", "docx")
#: What each format is called in messages.
NAMES = {
    "text": "text",
    "markdown": "Markdown",
    "html": "HTML",
    "pdf": "PDF",
    "docx": "Word (.docx)",
}


#: Longest reason a file is skipped for (corpus.scan remembers reasons up to this long).
MAX_REASON = 300


def _shorten(text: str, limit: int) -> str:
    """``text`` on one printable line of at most ``limit`` characters."""
    text = " ".join(text.split())
    text = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ExtractionError(CorpusError):
    """A file that cannot be read as its format; the message says why, in one printable
    line short enough for the scan to remember (whatever a library's error quoted)."""

    def __init__(self, reason: str) -> None:
        super().__init__(_shorten(reason, MAX_REASON))


#: Where pages begin in one line of extracted text: (character offset, page) pairs, the
#: first at offset 0. A PDF paragraph over a page break is one line with two marks.
PageMarks = tuple[tuple[int, int], ...]
#: Longest library message quoted in an ExtractionError.
_CLIP = 120


def clip(exc: BaseException) -> str:
    """A library's exception as a short, printable phrase for a one-line warning: its
    text comes from the document (an object name, a font name) and may hold anything."""
    return _shorten(str(exc), _CLIP) or type(exc).__name__


def quiet(*loggers: str) -> None:
    """Keep a library's log records off the terminal: they quote the document (a PDF's
    font names, a page's markup) unescaped; what matters reaches the user as our
    one-line warnings."""
    import logging

    for name in loggers:
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
        logger.propagate = False


def page_span(marks: PageMarks, start: int, end: int) -> tuple[int, int]:
    """(first, last) page of the characters ``start`` to ``end`` (exclusive) of a line
    with these marks."""
    first = last = marks[0][1]
    for offset, page in marks:
        if offset <= start:
            first = page
        if offset < end:
            last = page
    return first, max(first, last)


@dataclass(frozen=True)
class Extracted:
    """A document as text, with what its file says about it."""

    #: One of :data:`FORMATS`' values.
    format: str
    #: The text: the file's own for text and Markdown; otherwise one line per paragraph,
    #: paragraphs separated by blank lines, headings written as Markdown headings.
    text: str
    title: str | None = None
    #: Publication date (ISO) the file's metadata states: it outranks the text's.
    date: str | None = None
    #: A date to use only when the text gives none (a Word file's creation date).
    fallback_date: str | None = None
    url: str | None = None
    author: str | None = None
    #: Per line of :attr:`text`, where its pages begin (PDF only, see PageMarks).
    pages: tuple[PageMarks, ...] | None = None
    #: The document's language (ISO 639-1), see language.py; ``None`` when unknown.
    language: str | None = None
    #: What the user should hear about the reading (without the file's name).
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def lined(self) -> bool:
        """Whether line numbers of :attr:`text` are lines of the file a user can open."""
        return self.format in LINED

    def to_json(self) -> str:
        """For the extraction cache: plain JSON (data only, nothing that could run)."""
        data = asdict(self)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Extracted:
        """Raises ``ValueError`` (or ``KeyError``/``TypeError``) on anything malformed."""
        data: dict[str, Any] = json.loads(text)
        pages = data.pop("pages")
        warnings = tuple(str(w) for w in data.pop("warnings"))
        if data.get("format") not in NAMES or not isinstance(data.get("text"), str):
            raise ValueError("not an extraction")
        for key in ("title", "date", "fallback_date", "url", "author", "language"):
            if data[key] is not None and not isinstance(data[key], str):
                raise TypeError(f"{key} is not a string")
        return cls(
            **data,
            pages=None
            if pages is None
            else tuple(tuple((int(a), int(b)) for a, b in marks) for marks in pages),
            warnings=warnings,
        )


def format_of(name: str) -> str | None:
    """The format a file's name announces, or ``None`` if it is not a document."""
    return FORMATS.get(os.path.splitext(name)[1].lower())


def sniff(head: bytes) -> str | None:
    """What a file's first bytes say it is: ``pdf``, ``zip`` (a Word file, or another
    zip), ``html``, or ``None`` (text, or unknown)."""
    if head.startswith(b"%PDF-") or head[:1024].lstrip().startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    start = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html")) or (
        start.startswith(b"<?xml") and b"<html" in start
    ):
        return "html"
    return None


def _actual_format(declared: str, data: bytes) -> tuple[str, list[str]]:
    """The format to read ``data`` as, and a warning if its name says otherwise."""
    found = sniff(data[:4096])
    actual = {"pdf": "pdf", "zip": "docx", "html": "html"}.get(found or "")
    if actual is None:
        if declared in BINARY_FORMATS:
            raise ExtractionError(
                f"not a {NAMES[declared]} file (its content does not start as one does)"
            )
        return declared, []
    if actual == declared or (actual == "html" and declared == "markdown"):
        return declared, []
    return actual, [f"its content is {NAMES[actual]}, not {NAMES[declared]}; read as such"]


def _extract(kind: str, data: bytes, name: str) -> Extracted:
    if kind == "html":
        from diplosearch.ingest.formats import html

        return html.extract(data)
    if kind == "pdf":
        from diplosearch.ingest.formats import pdf

        return pdf.extract(data)
    if kind == "docx":
        from diplosearch.ingest.formats import docx

        return docx.extract(data)
    from diplosearch.ingest.formats import text

    return text.extract(data, name, kind)


def extract(name: str, data: bytes) -> Extracted:
    """Read ``data``, the bytes of the corpus file ``name``, as the document it is."""
    from diplosearch.ingest import language

    declared = format_of(name) or "text"
    kind, warnings = _actual_format(declared, data)
    try:
        result = _extract(kind, data, name)
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError(f"cannot be read as {NAMES[kind]} ({clip(exc)})") from exc
    # One form for every letter (NFC), as queries are cleaned: a page written with
    # combining marks (Bengali, Vietnamese, decomposed accents from a Mac) matches a query
    # typed with precomposed ones.
    text = unicodedata.normalize("NFC", result.text)
    title = unicodedata.normalize("NFC", result.title) if result.title else None
    return replace(
        result,
        text=text,
        title=title,
        language=language.detect(text),
        warnings=(*warnings, *result.warnings),
    )
