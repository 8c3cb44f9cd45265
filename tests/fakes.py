"""A small deterministic embedding model for logic-only tests: no torch, and it counts."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from diplosearch.errors import ModelError


class HashingModel:
    """Bag-of-words vectors from hashed words: similar texts get similar vectors."""

    def __init__(self, name: str = "test/hashing", dimension: int = 64, max_tokens: int = 60):
        self.name = name
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.embedded: list[str] = []
        self.warmed_up = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.name}/{self.dimension}".encode()).hexdigest()[:16]

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.sha256(word.encode()).digest()
            vector[digest[0] % self.dimension] += 1.0 if digest[1] % 2 else -1.0
        norm = np.linalg.norm(vector)
        if not norm:  # no words (a lone "."): still a unit vector, as real models give
            vector[0], norm = 1.0, 1.0
        return vector / norm

    def embed_passages(self, texts, spans, folder: Path, progress=None) -> list[np.ndarray]:
        """Like the real model: per text its vector, then one per span (here each span's
        own bag of words). Only the passages are logged: spans cost no extra pass."""
        self.embedded.extend(texts)
        if progress:
            progress(len(texts), len(texts))
        return [
            np.stack([self._vector(t)] + [self._vector(t[a:b]) for a, b in s])
            for t, s in zip(texts, spans, strict=True)
        ]

    def warm_up(self) -> None:
        self.warmed_up += 1

    def ensure_query_encoder(self, folder: Path) -> None:
        """As the real model: exported once, whole (a reader never sees it half written)."""
        if (folder / "encoder.json").exists():
            return
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / f".encoder.json.{os.getpid()}.tmp"
        staged.write_text("{}")
        os.replace(staged, folder / "encoder.json")

    def embed_query(self, text: str, folder: Path) -> np.ndarray:
        """Needs the encoder folder, as the real model does; a failure to read it is a
        ModelError, as there."""
        try:
            (folder / "encoder.json").read_text()
        except OSError as exc:
            raise ModelError(f"cannot load the query encoder in {folder}: {exc!r}") from exc
        return self._vector(text)
