"""Written dates in any language: "19 мая 2023", "2023年5月18日", "18 May 2023".

A pattern finds what may be a whole date (a day, a month and a year, in the orders
languages write them); dateparser, which knows the month names and forms of some 200
languages, reads it. A date without its year is never completed with a guessed one.
"""

from __future__ import annotations

import datetime as dt
import re

#: Where a whole date may be written: year-month-day with CJK units, day month year
#: ("19 мая 2023", "18. Mai 2023"), month day year ("May 18, 2023") and ISO.
_CANDIDATE_RE = re.compile(
    r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"
    r"|\b\d{1,2}\.?\s+(?:(?:de|of)\s+)?[^\W\d_]{3,}\.?,?\s+(?:(?:de|del)\s+)?\d{4}\b"
    r"|\b[^\W\d_]{3,}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}\b"
    r"|\b\d{4}-\d{2}-\d{2}\b"
)
_SETTINGS = {
    "REQUIRE_PARTS": ["day", "month", "year"],
    "STRICT_PARSING": True,
    "RETURN_AS_TIMEZONE_AWARE": False,
}


def parse(candidate: str, language: str | None = None) -> dt.date | None:
    """``candidate`` as a date, if it is a whole one in ``language`` (or English)."""
    import dateparser

    languages = list(dict.fromkeys([language, "en"])) if language else None
    try:
        found = dateparser.parse(candidate, languages=languages, settings=_SETTINGS)
    except (ValueError, OverflowError, TypeError):
        return None
    if found is None or not 1000 <= found.year <= 2200:
        return None
    # What is written, not what dateparser makes of it: "12 years 2023" reads as a
    # relative date (twelve years ago); the year and day must be the ones written.
    numbers = {int(n) for n in re.findall(r"\d+", candidate)}
    if found.year not in numbers or found.day not in numbers:
        return None
    return found.date()


def first_date(
    text: str, language: str | None = None, within: int | None = None
) -> dt.date | None:
    """The first whole date written in ``text`` (beginning in its first ``within``
    characters, if given)."""
    for match in _CANDIDATE_RE.finditer(text):
        if within is not None and match.start() > within:
            return None
        if (date := parse(match.group(0), language)) is not None:
            return date
    return None
