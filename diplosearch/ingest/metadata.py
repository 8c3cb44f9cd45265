"""Recognise the furniture of news text: date headers, datelines, headlines and web boilerplate.

These are the rules the chunker uses to give every passage a title, a date and a section.
They are deliberately conservative: a line is only called a headline, dateline or
boilerplate when it looks unmistakably like one, because a wrong guess either hides text
or puts a false date on a citation.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = (
    r"(?P<month>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)

#: ``" date 2024-07-04 Title"``: the header some scrapers put on the first line.
HEADER_RE = re.compile(r"^\s*date\s+(?P<date>\d{4}-\d{2}-\d{2})\b\s*(?P<title>.*?)\s*$")

#: ``BISHKEK, Oct. 26 (Xinhua) — ...`` or ``BISHKEK, October 26, 2023``: place in capitals,
#: month and day, optional year, optional agency, then the separator before the story.
DATELINE_RE = re.compile(
    r"^(?P<place>[A-Z][A-Z.'’\-]*(?:\s+[A-Z][A-Z.'’\-]*)*(?:,\s+[A-Z][A-Za-z.'’\-]*)?),\s+"
    + _MONTH
    + r"\.?\s+(?P<day>\d{1,2})(?:,\s*(?P<year>\d{4}))?"
    r"\s*(?:\((?P<agency>[^()]{1,40})\))?"
    r"(?P<sep>\s*(?:--|—|–|-)\s*)?"
)

#: A full date written out anywhere in a document: the source of a year for datelines.
FULL_DATE_RE = re.compile(r"\b" + _MONTH + r"\.?\s+(?P<day>\d{1,2}),\s*(?P<year>(?:19|20)\d{2})\b")

#: Where a web page's comment form begins; nothing after it is part of the article.
COMMENT_FORM_RE = re.compile(
    r"^(?:leave a (?:reply|comment)|post a comment|add a comment|\d+\s+comments?)\s*$", re.I
)

#: Whole paragraphs that are page furniture rather than reporting.
BOILERPLATE_RE = re.compile(
    r"^(?:your email address will not be published"
    r"|required fields are marked"
    r"|save my name, email,? and website"
    r"|(?:share|share this|share this article|tweet|print|email)\s*[:!]?\s*$"
    r"|(?:click|tap) (?:here )?to (?:share|print|email|subscribe)"
    r"|(?:previous|next) (?:post|article|story)\b"
    r"|(?:related(?: posts| articles| stories)?|read more|see also|you may also like"
    r"|advertisement)\s*[:.]?\s*$"
    r"|all rights reserved|copyright\s*©"
    r"|jump to\b.{0,80}$)",
    re.I,
)

_TERMINAL = tuple(".!?,;:…)。！？；：，」』")
_MARKDOWN_HEADING_RE = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Dateline:
    """The dateline at the head of a report; ``opens_story`` when story text follows it."""

    month: int
    day: int
    year: int | None
    opens_story: bool


def parse_header(line: str) -> tuple[str, str] | None:
    """``(iso_date, title)`` from a ``date YYYY-MM-DD Title`` header line, if it is one."""
    match = HEADER_RE.match(line)
    if not match or parse_iso(match["date"]) is None:
        return None
    return match["date"], match["title"]


def parse_iso(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def parse_dateline(paragraph: str) -> Dateline | None:
    """The dateline that starts ``paragraph``, if any."""
    match = DATELINE_RE.match(paragraph)
    if not match:
        return None
    rest = paragraph[match.end() :].strip()
    opens_story = bool(rest) and bool(match["agency"] or match["sep"])
    return Dateline(
        month=_MONTHS[match["month"][:3].lower()],
        day=int(match["day"]),
        year=int(match["year"]) if match["year"] else None,
        opens_story=opens_story,
    )


def first_full_date(text: str) -> dt.date | None:
    """The first ``Month D, YYYY`` in ``text``: the year that undated datelines belong to."""
    for match in FULL_DATE_RE.finditer(text):
        date = _make_date(
            int(match["year"]), _MONTHS[match["month"][:3].lower()], int(match["day"])
        )
        if date:
            return date
    return None


def resolve_dateline(dateline: Dateline, reference: dt.date | None) -> dt.date | None:
    """Give a dateline its year: its own, else the reference date's (a year earlier if the
    dateline would otherwise fall more than a month after a publication date). ``None`` when
    the document gives no year at all: a citation never carries a guessed year."""
    if dateline.year is not None:
        return _make_date(dateline.year, dateline.month, dateline.day)
    if reference is None:
        return None
    date = _make_date(reference.year, dateline.month, dateline.day)
    if date and date > reference + dt.timedelta(days=31):
        date = _make_date(reference.year - 1, dateline.month, dateline.day)
    return date


def _make_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def markdown_heading(line: str) -> str | None:
    """The text of a Markdown ``#`` heading line, else ``None``."""
    match = _MARKDOWN_HEADING_RE.match(line.strip())
    return match["text"] if match else None


#: Notes a transcript puts after what was said: "... like this. [Laughter]".
_TRAILING_NOTES_RE = re.compile(r"(?:\s*\[[^\[\]]*\])+\s*$")


def looks_like_heading(paragraph: str) -> bool:
    """A headline: one short line that does not end like a sentence (or a caption). A
    sentence followed by a transcript's note ("You're going to like this. [Laughter]")
    ends like a sentence."""
    text = paragraph.strip()
    if not text or "\n" in text or len(text) > 200 or len(text.split()) > 20:
        return False
    if " | " in text:  # a table's row (cells joined by extraction): content, not a title
        return False
    spoken = _TRAILING_NOTES_RE.sub("", text)
    if spoken and spoken != text and spoken.endswith(_TERMINAL):
        return False
    return not text.endswith(_TERMINAL) and not text.endswith(("'", '"', "’", "”"))


#: An enumerator that opens a section heading: "VII.", "(c)", "3.", "Part 1.", "B)".
_ENUMERATOR_RE = re.compile(
    r"^(?:part\s+\d+\.?|[IVXLC]+\.|\(?[A-Za-z0-9]{1,3}\)|\d{1,2}\.)\s*", re.I
)
#: Longest section heading, in words: a title, not a sentence.
HEADING_WORDS = 12


def heading_shape(paragraph: str) -> str | None:
    """How ``paragraph`` looks like a section heading, if it does: ``"headline"`` (short,
    no sentence ending), ``"capitals"`` ("THE NAVY.") or ``"numbered"`` ("VII.",
    "(c) Agriculture and forests."). Numbered ones are also how list items look: the
    chunker checks what follows before it calls one a heading."""
    text = paragraph.strip()
    if not text or "\n" in text or " | " in text:  # no table row heads a section
        return None
    if looks_like_heading(text):
        return "headline"
    if len(text.split()) > HEADING_WORDS or len(text) > 120:
        return None
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 2 and all(c.isupper() for c in letters):
        return "capitals"
    match = _ENUMERATOR_RE.match(text)
    if match and len(text[match.end() :].split()) <= 6:
        return "numbered"
    return None


def is_boilerplate(paragraph: str) -> bool:
    return bool(BOILERPLATE_RE.match(paragraph.strip()))


def starts_comment_form(paragraph: str) -> bool:
    return bool(COMMENT_FORM_RE.match(paragraph.strip()))


#: The line that opens and closes a Markdown file's YAML front matter.
_FENCE = "---"


def front_matter(lines: list[str]) -> tuple[dict[str, Any], list[str]]:
    """A Markdown file's YAML front matter (``---`` to ``---`` or ``...`` at the top) and
    the lines with the block blanked, so that it is never indexed and every later line
    keeps its number. Invalid YAML, or a block that is not a mapping, still is not text of
    the document: it is blanked and gives no metadata."""
    if not lines or lines[0].strip() != _FENCE:
        return {}, lines
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in (_FENCE, "...")), None)
    if end is None:
        return {}, lines
    import yaml

    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError:
        data = None
    blanked = [""] * (end + 1) + lines[end + 1 :]
    return (data if isinstance(data, dict) else {}), blanked


def front_date(value: Any) -> str | None:
    """The ISO date of a front-matter ``date`` (YAML gives a date, a datetime or text)."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        parsed = parse_iso(text[:10]) or first_full_date(text)
        return parsed.isoformat() if parsed else None
    return None
