"""Plain text and Markdown: decoded as corpus.decode does; the chunker reads their lines."""

from __future__ import annotations

from diplosearch.ingest.corpus import decode
from diplosearch.ingest.formats import Extracted


def extract(data: bytes, name: str, kind: str) -> Extracted:
    text, warnings = decode(data, name)
    # decode's warnings already name the file; the caller prefixes the name again.
    prefix = f"{name}: "
    return Extracted(
        format=kind,
        text=text,
        warnings=tuple(w.removeprefix(prefix) for w in warnings),
    )
