"""Web pages: the article's main text and metadata, by trafilatura.

trafilatura (with htmldate for the date) is the maintained library for this job: it
drops navigation, cookie banners, comment forms, related links and footers, and finds the
title, publication date, author, site name and canonical URL (``<link rel=canonical>`` or
``og:url``). Scripts, styles and event handlers are removed before any text is taken, so
none of their text is indexed; nothing in a page is ever run. Paragraphs follow the
extracted page's block elements (paragraphs, headings, list items, table rows, quotes).
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from diplosearch.ingest.formats import Extracted, ExtractionError, quiet

#: trafilatura's block elements (its XML vocabulary), and what each becomes.
_HEADINGS = {"head"}
_LISTS = {"list"}
_TABLES = {"table"}
_SPACE_RE = re.compile(r"\s+")
#: trafilatura's elements that end a run of words (the rest, such as ``hi`` for bold and
#: ``ref`` for links, sit inside a sentence).
_BREAKS = {"lb", "p", "item", "list", "cell", "row", "head", "quote", "table", "code", "div"}
#: An inline image or file (``data:`` URI) of a kilobyte or more: dropped before parsing.
#: lxml stops at a text or attribute node over 10 MB, and would lose the rest of the page.
_DATA_URI_RE = re.compile(rb"data:[^\"'\s>)]{1024,}", re.IGNORECASE)
_CHARSET_RE = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_DECLARATION_RE = re.compile(r"^\s*<\?xml[^>]*\?>")
#: Share of a page's non-ASCII bytes that may be invalid in its declared UTF-8 for it
#: to be read as UTF-8 (with U+FFFD and a warning) rather than have its charset guessed.
_STRAY = 0.01


def _text(element: Any) -> str:
    """An element's text in document order, white space collapsed: blocks inside it (a
    paragraph in a table cell, a line break) apart, inline markup (bold, links) not."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        block = node.tag in _BREAKS and node is not element
        if block:
            parts.append(" ")
        if node.text:
            parts.append(node.text)
        for child in node:
            walk(child)
            if child.tail:
                parts.append(child.tail)
        if block:
            parts.append(" ")

    try:
        walk(element)
    except RecursionError:  # nested deeper than Python recurses: flatten the words
        parts = [" ".join(element.itertext())]
    return _SPACE_RE.sub(" ", "".join(parts)).strip()


def _blocks(body: Any) -> list[str]:
    """The paragraphs of trafilatura's extracted body, in order: each paragraph, heading,
    quote and list item, and each table row as its cells joined by `` | ``."""
    blocks: list[str] = []
    for element in body:
        tag = element.tag
        if tag in _LISTS:
            blocks.extend(t for item in element.findall("item") if (t := _text(item)))
        elif tag in _TABLES:
            for row in element.iter("row"):
                cells = [t for cell in row.findall("cell") if (t := _text(cell))]
                if cells:
                    blocks.append(" | ".join(cells))
        elif tag in _HEADINGS:
            if text := _text(element):
                blocks.append(f"## {text}")
        elif text := _text(element):
            blocks.append(text)
    return blocks


def _decode(data: bytes) -> tuple[str | bytes, list[str]]:
    """The page as text, by the charset it declares, and warnings; or its bytes, for
    trafilatura to guess the charset of a page that declares none that fits.

    Valid UTF-8 is UTF-8, whatever the page says (a page re-saved as UTF-8 keeps its old
    ``<meta charset>``). A page declared UTF-8 with a few invalid bytes keeps its text,
    those bytes shown as U+FFFD, with a warning: guessing another charset for it would
    turn every accented letter into mojibake."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        invalid = exc
    found = _CHARSET_RE.search(data[:16384])
    declared = None
    if found:
        try:
            declared = codecs.lookup(found[1].decode("ascii")).name
        except (LookupError, UnicodeDecodeError):
            declared = None
    if declared is not None and declared != "utf-8":
        try:
            return data.decode(declared), []
        except UnicodeDecodeError:
            return data, []
    if declared == "utf-8":
        text = data.decode("utf-8", errors="replace")
        wide = sum(byte >= 0x80 for byte in data)
        if text.count("\N{REPLACEMENT CHARACTER}") <= max(3, _STRAY * wide):
            return text, [
                f"invalid UTF-8 at byte {invalid.start}; undecodable bytes shown as "
                "\N{REPLACEMENT CHARACTER}"
            ]
    return data, []


def extract(data: bytes) -> Extracted:
    """The page's main text and metadata; :class:`ExtractionError` if it has none."""
    import trafilatura

    quiet("trafilatura", "htmldate", "courlan", "justext")
    page, warnings = _decode(_DATA_URI_RE.sub(b"data:,", data))
    if isinstance(page, str):
        page = _XML_DECLARATION_RE.sub("", page, count=1)
    try:
        document = trafilatura.bare_extraction(
            page,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            # No date guessed from the text at large: a date the page states, or none.
            date_extraction_params={"extensive_search": False, "original_date": True},
        )
    except (ValueError, TypeError, RecursionError) as exc:  # lxml on broken markup
        raise ExtractionError(f"unreadable HTML ({exc})") from exc
    if document is None or document.body is None:
        raise ExtractionError("no main text found in this web page")
    blocks = _blocks(document.body)
    if not blocks:
        raise ExtractionError("no main text found in this web page")

    def clean(value: Any) -> str | None:
        return _SPACE_RE.sub(" ", value).strip() or None if isinstance(value, str) else None

    url = clean(document.url)
    if url is not None and not url.lower().startswith(("http://", "https://")):
        url = None  # only a link a reader can follow; never javascript: or data:
    return Extracted(
        format="html",
        text="\n\n".join(blocks) + "\n",
        title=clean(document.title),
        date=clean(document.date),
        url=url,
        author=clean(document.author),
        warnings=tuple(warnings),
    )
