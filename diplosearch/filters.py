"""Which passages may answer: date range, source glob, speaker."""

from __future__ import annotations

import calendar
import datetime as dt
import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from diplosearch.chunks import Chunk
from diplosearch.errors import QueryError

_PERIOD_RE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


def period_bound(text: str, *, end: bool = False) -> str:
    """The ISO date a date-range bound given as ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``
    stands for: the first day of that period for a start, its last day for an end
    (``--until 2023`` takes in all of 2023). Anything else is a :class:`QueryError`."""
    match = _PERIOD_RE.fullmatch(text.strip())
    if match is None:
        raise QueryError(f"a date must be YYYY, YYYY-MM or YYYY-MM-DD, not {text!r}")
    year, month, day = (int(part) if part else None for part in match.groups())
    try:
        if month is None:
            date = dt.date(year, 12, 31) if end else dt.date(year, 1, 1)  # type: ignore[arg-type]
        elif day is None:
            last = calendar.monthrange(year, month)[1]  # type: ignore[arg-type]
            date = dt.date(year, month, last if end else 1)  # type: ignore[arg-type]
        else:
            date = dt.date(year, month, day)  # type: ignore[arg-type]
    except ValueError as exc:
        raise QueryError(f"{text!r} is not a date: {exc}") from exc
    return date.isoformat()


@dataclass(frozen=True)
class Filters:
    """Restrictions on which passages may answer."""

    since: str | None = None
    until: str | None = None
    source: str | None = None
    speaker: str | None = None

    def __bool__(self) -> bool:
        return any((self.since, self.until, self.source, self.speaker))

    def admits(self, chunk: Chunk, speakers: Sequence[str], people: set[str]) -> bool:
        """Whether ``chunk`` (spoken by ``speakers``) passes; ``people`` from :meth:`people`."""
        if (self.since or self.until) and chunk.date is None:
            return False
        if self.since and chunk.date < self.since:  # type: ignore[operator]
            return False
        if self.until and chunk.date > self.until:  # type: ignore[operator]
            return False
        if self.source and not (
            fnmatch.fnmatchcase(chunk.source, self.source)
            or fnmatch.fnmatchcase(chunk.source.rsplit("/", 1)[-1], self.source)
        ):
            return False
        return not self.speaker or bool(people & set(speakers))

    def people(self, names: dict[str, str]) -> set[str]:
        """Everyone ``speaker`` names, by any spelling in the corpus (``Zhaparov`` also finds
        what was filed under ``Sadyr Japarov``)."""
        if not self.speaker:
            return set()
        wanted = re.compile(rf"\b{re.escape(self.speaker.strip())}\b", re.IGNORECASE)
        return {canonical for raw, canonical in names.items() if wanted.search(raw)} | {
            canonical for canonical in names.values() if wanted.search(canonical)
        }


def speakers_of(chunk: Chunk, names: dict[str, str]) -> tuple[str, ...]:
    """A chunk's speakers under one name per person (the manifest's map)."""
    return tuple(dict.fromkeys(names.get(n, n) for n in chunk.speakers))
