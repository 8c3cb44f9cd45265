"""The embedding cache: vectors keyed by model and chunk-text hash, in SQLite.

Rebuilding the index after an edit re-embeds only texts never seen before by this model;
everything else, including text that moved to another file or paragraph, comes from here.
SQLite gives atomic, crash-safe inserts and safe use from several processes.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, text_sha256)
) WITHOUT ROWID
"""


#: How far from length 1 a cached vector may be (bfloat16 builds round to about 1e-3).
UNIT_TOLERANCE = 1e-2


def text_key(text: str) -> str:
    """Key of a text in the cache: the same text is never embedded twice by one model."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    def __init__(self, path: Path, model_key: str, dimension: int) -> None:
        self.path = path
        self.model_key = model_key
        self.dimension = dimension
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60)
        with self._db:
            self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_many(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached rows (one or more vectors per text) for those of ``hashes`` that have
        them; a blob that is not whole vectors, or not finite unit vectors (every vector
        stored is normalised), is a miss: the text is embedded again, never indexed with
        a damaged vector."""
        found: dict[str, np.ndarray] = {}
        wanted = list(dict.fromkeys(hashes))
        size = self.dimension * 4
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT text_sha256, vector FROM embeddings "
                f"WHERE model = ? AND text_sha256 IN ({marks})",
                [self.model_key, *batch],
            )
            for key, blob in rows:
                if not blob or len(blob) % size:
                    continue
                vectors = np.frombuffer(blob, dtype=np.float32).reshape(-1, self.dimension)
                norms = np.linalg.norm(vectors, axis=1)
                if np.isfinite(vectors).all() and np.all(np.abs(norms - 1.0) < UNIT_TOLERANCE):
                    found[key] = vectors
        return found

    def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings (model, text_sha256, vector) VALUES (?, ?, ?)",
                [
                    (self.model_key, key, np.asarray(vector, dtype=np.float32).tobytes())
                    for key, vector in items
                ],
            )
