"""The caches: vectors keyed by model and chunk-text hash, and documents' extracted text
keyed by file hash, in SQLite.

Rebuilding the index after an edit re-embeds only texts never seen before by this model;
everything else, including text that moved to another file or paragraph, comes from here.
Likewise a PDF, web page or Word file is parsed once per content and extractor version:
an unchanged 300-page PDF is never parsed again, even when everything is re-chunked.
SQLite gives atomic, crash-safe inserts and safe use from several processes.

The cache is never trusted: each entry carries a checksum of its model, key and vectors
(so vectors swapped between entries are caught, not indexed under the wrong paragraph),
and a file SQLite cannot read is removed and started afresh. Damage costs re-embedding,
never a failed build or a wrong vector.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Self

import numpy as np

_EXTRACTIONS = """
CREATE TABLE IF NOT EXISTS extractions (
    key TEXT NOT NULL PRIMARY KEY,
    extracted TEXT NOT NULL,
    checksum BLOB NOT NULL
) WITHOUT ROWID
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    vector BLOB NOT NULL,
    checksum BLOB NOT NULL,
    PRIMARY KEY (model, text_sha256)
) WITHOUT ROWID
"""
#: The table of earlier versions, whose entries carried no checksum: dropped, re-embedded.
_OLD_TABLE = "DROP TABLE IF EXISTS embeddings"


#: How far from length 1 a cached vector may be (bfloat16 builds round to about 1e-3).
UNIT_TOLERANCE = 1e-2


def text_key(text: str) -> str:
    """Key of a text in the cache: the same text is never embedded twice by one model."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checksum(model_key: str, key: str, blob: bytes) -> bytes:
    return hashlib.blake2b(f"{model_key}\0{key}\0".encode() + blob, digest_size=8).digest()


class _Cache:
    """A cache file: opened or created, and removed and started afresh when damaged."""

    #: What the cache holds, for messages.
    what = "cache"
    _statements: tuple[str, ...] = ()

    def __init__(self, path: Path) -> None:
        """Open (or create) the cache at ``path``. A file that is not a readable SQLite
        database is removed first, with a notice in :attr:`notices`. Raises
        :class:`sqlite3.Error` or :class:`OSError` only when the folder cannot be written."""
        self.path = path
        #: What was found damaged and started afresh, for the user.
        self.notices: list[str] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            self._start_afresh(exc)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        try:
            with db:
                for statement in self._statements:
                    db.execute(statement)
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _start_afresh(self, exc: sqlite3.DatabaseError) -> None:
        """After ``exc``: if it says the file is damaged, remove the file (and its journal)
        and open a new, empty cache, whose vectors are embedded again; otherwise (locked,
        read-only, disk full: not the file's fault) raise it."""
        if isinstance(exc, sqlite3.OperationalError) and not _damage(exc):
            raise exc
        db = getattr(self, "_db", None)  # None when the file could not even be opened
        if db is not None:
            db.close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()
        self.notices.append(
            f"the {self.what} {self.path} was unreadable ({exc}); it was removed and "
            "what it held is made again"
        )
        self._db = self._open()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EmbeddingCache(_Cache):
    what = "embedding cache"
    _statements = (_OLD_TABLE, _SCHEMA)

    def __init__(self, path: Path, model_key: str, dimension: int) -> None:
        self.model_key = model_key
        self.dimension = dimension
        super().__init__(path)

    def get_many(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached rows (one or more vectors per text) for those of ``hashes`` that have
        them. An entry whose checksum fails, whose blob is not whole vectors, or whose
        vectors are not finite unit vectors (every vector stored is normalised) is a
        miss: the text is embedded again, never indexed with a damaged vector. A cache
        file damaged inside is removed, and everything is a miss."""
        try:
            return self._get_many(hashes)
        except sqlite3.DatabaseError as exc:
            self._start_afresh(exc)
            return {}

    def _get_many(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        wanted = list(dict.fromkeys(hashes))
        size = self.dimension * 4
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT text_sha256, vector, checksum FROM vectors "
                f"WHERE model = ? AND text_sha256 IN ({marks})",
                [self.model_key, *batch],
            )
            for key, blob, checksum in rows:
                if not isinstance(blob, bytes) or not blob or len(blob) % size:
                    continue
                if checksum != _checksum(self.model_key, key, blob):
                    continue
                vectors = np.frombuffer(blob, dtype=np.float32).reshape(-1, self.dimension)
                norms = np.linalg.norm(vectors, axis=1)
                if np.isfinite(vectors).all() and np.all(np.abs(norms - 1.0) < UNIT_TOLERANCE):
                    found[key] = vectors
        return found

    def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Store vectors; a cache file found damaged on the way is removed and the
        vectors stored in a fresh one."""
        rows = []
        for key, vector in items:
            blob = np.asarray(vector, dtype=np.float32).tobytes()
            rows.append((self.model_key, key, blob, _checksum(self.model_key, key, blob)))
        try:
            self._insert(rows)
        except sqlite3.DatabaseError as exc:
            self._start_afresh(exc)
            self._insert(rows)

    def _insert(self, rows: list[tuple[str, str, bytes, bytes]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors (model, text_sha256, vector, checksum) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )


class ExtractionCache(_Cache):
    """Extracted documents (ingest/formats.Extracted as JSON: data, never code) by key: the
    file's SHA-256, the format it was read as and the extractor's version. An entry whose
    checksum fails or that does not parse is a miss: the file is extracted again."""

    what = "extraction cache"
    _statements = (_EXTRACTIONS,)

    def get(self, key: str) -> str | None:
        try:
            row = self._db.execute(
                "SELECT extracted, checksum FROM extractions WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            self._start_afresh(exc)
            return None
        if row is None or not isinstance(row[0], str):
            return None
        if row[1] != _checksum(self.what, key, row[0].encode("utf-8")):
            return None
        return row[0]

    def put(self, key: str, extracted: str) -> None:
        row = (key, extracted, _checksum(self.what, key, extracted.encode("utf-8")))
        try:
            self._put(row)
        except sqlite3.DatabaseError as exc:
            self._start_afresh(exc)
            self._put(row)

    def _put(self, row: tuple[str, str, bytes]) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO extractions (key, extracted, checksum) VALUES (?, ?, ?)",
                row,
            )


def _damage(exc: sqlite3.OperationalError) -> bool:
    """Whether an OperationalError says the file is damaged rather than busy or unwritable
    (SQLite reports a malformed page as OperationalError in some versions)."""
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text
