"""Extraction with a cache: each file's content is parsed once per extractor version."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from diplosearch.ingest.formats import EXTRACTOR_VERSION, LINED, Extracted, extract, format_of

if TYPE_CHECKING:
    from diplosearch.store.cache import ExtractionCache


class Extractor:
    """Reads corpus files as :class:`Extracted` documents; PDFs, web pages and Word files
    through the extraction cache (store/cache.py), keyed by content hash, declared format
    and extractor version. A cache that cannot be opened or written costs re-parsing,
    never a build: it is left out, with a notice."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._cache: ExtractionCache | None = None
        #: Set once the cache could not be opened: files are parsed without it.
        self._unusable = False
        #: What went wrong with the cache, for the user.
        self.notices: list[str] = []

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def _open(self) -> ExtractionCache | None:
        from diplosearch.store.cache import ExtractionCache

        if self._cache is None and not self._unusable:
            try:
                self._cache = ExtractionCache(self._path)
                self.notices.extend(self._cache.notices)
            except (sqlite3.Error, OSError) as exc:
                self._unusable = True
                self.notices.append(
                    f"the extraction cache cannot be used ({exc}); files are parsed afresh"
                )
        return self._cache

    def extract(self, name: str, data: bytes, sha256: str) -> Extracted:
        """``data`` (the file ``name``, whose hash is ``sha256``) as a document; raises
        formats.ExtractionError for a file that cannot be read as its format."""
        declared = format_of(name) or "text"
        if declared in LINED:
            return extract(name, data)  # decoding text costs less than a cache lookup
        key = f"{EXTRACTOR_VERSION}:{declared}:{sha256}"
        cache = self._open()
        if cache is not None:
            stored = cache.get(key)
            if stored is not None:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    return Extracted.from_json(stored)
        extracted = extract(name, data)
        if cache is not None:
            try:
                cache.put(key, extracted.to_json())
            except (sqlite3.Error, OSError) as exc:
                self.notices.append(f"the extraction cache cannot be written ({exc})")
        return extracted
