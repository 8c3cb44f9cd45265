"""Find the documents of a corpus folder and fingerprint them by content."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from diplosearch.errors import CorpusError

#: File endings treated as documents; everything else in the folder is ignored.
DOCUMENT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class SourceFile:
    """One document: its path relative to the corpus (the citation) and its content hash."""

    relpath: str
    path: Path
    sha256: str
    size: int

    def read_text(self) -> str:
        """Decode as UTF-8 (BOM dropped, bad bytes replaced) so a stray byte never stops a build."""
        return self.path.read_bytes().decode("utf-8-sig", errors="replace")


def _walk(root: Path) -> Iterator[Path]:
    """Documents under ``root`` in a stable order, skipping hidden entries and symlinked dirs."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(DOCUMENT_SUFFIXES):
                continue
            path = Path(dirpath, name)
            if path.is_file():
                yield path


def scan(root: Path) -> dict[str, SourceFile]:
    """Hash every document under ``root``; the hashes are what stale detection compares."""
    if not root.exists():
        raise CorpusError(f"corpus folder not found: {root}")
    if not root.is_dir():
        raise CorpusError(f"corpus path is not a folder: {root}")
    sources: dict[str, SourceFile] = {}
    for path in _walk(root):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorpusError(f"cannot read {path}: {exc.strerror}") from exc
        relpath = path.relative_to(root).as_posix()
        sources[relpath] = SourceFile(
            relpath=relpath, path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data)
        )
    return sources
