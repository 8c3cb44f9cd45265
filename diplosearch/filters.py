"""Which passages may answer: date range, source glob, speaker."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from diplosearch.chunks import Chunk


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
