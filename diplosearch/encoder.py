"""The query encoder: the embedding model exported to ONNX and run without torch.

``import sentence_transformers`` costs seconds (torch, transformers, scikit-learn). A query
needs one forward pass of a small BERT, so it runs the same network exported to ONNX with
onnxruntime and the model's own ``tokenizer.json``: same word pieces, same truncation, mean
pooling and L2 normalisation, as sentence-transformers does. Export happens once per model,
at index time, when torch is loaded anyway.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from diplosearch.errors import ModelError
from diplosearch.store.folders import staging_folder

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "encoder.json"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export(transformer: Any, tokenizer_json: Path, target: Path, meta: dict[str, Any]) -> None:
    """Export a Hugging Face encoder (``transformer``: its ``auto_model``) to ``target``.

    Written to a temporary folder beside ``target`` and renamed into place, so a reader
    never sees half an encoder; if another process won the race, its copy is kept.
    """
    import torch

    class _LastHiddenState(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_folder(f".{target.name}-", target.parent)
    try:
        example = torch.ones((2, 8), dtype=torch.long)
        axes = {0: "batch", 1: "sequence"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHiddenState(transformer).eval(),
                (example, torch.ones_like(example), torch.zeros_like(example)),
                str(tmp / MODEL_FILE),
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={**{name: axes for name in _INPUTS}, "last_hidden_state": axes},
                opset_version=17,
                dynamo=False,
            )
        _optimize(tmp / MODEL_FILE)
        shutil.copyfile(tokenizer_json, tmp / TOKENIZER_FILE)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        for path in tmp.iterdir():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        try:
            tmp.rename(target)
        except OSError:
            if not (target / META_FILE).exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _optimize(model: Path) -> None:
    """Apply onnxruntime's graph optimisations once, offline, and keep the result: a query
    process then loads the graph as is, which halves the encoder's start-up time."""
    onnxruntime = _onnxruntime()
    optimized = model.with_suffix(".optimized")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(optimized)
    onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    optimized.replace(model)


_IMPORT_LOCK = threading.Lock()


def _onnxruntime() -> Any:
    """onnxruntime, its own logger quiet. Its import writes a warning straight to file
    descriptor 2 when it cannot save a telemetry identifier (a user without a writable
    home, such as a service account reading a shared index), outside our one-line
    messages: the import runs with that descriptor pointed at /dev/null."""
    with _IMPORT_LOCK:  # one thread at a time: fd 2 is the process's
        if "onnxruntime" not in sys.modules:
            _import_quietly()
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)
    return onnxruntime


def _import_quietly() -> None:
    """Import onnxruntime with file descriptor 2 pointed at /dev/null."""
    saved = None
    try:
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        pass
    try:
        import onnxruntime  # noqa: F401 - imported for its side effect, quietly
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)


class QueryEncoder:
    """Embeds queries with onnxruntime; loads in a fraction of a second.

    ``for_batches`` sets it up for many batches (a build) instead: weights prepacked for
    the matrix kernels, and the threads of every core. ``resident``: for a process that
    answers many queries (a notebook, a server), weights prepacked too: ~60 ms more to
    load, ~3 ms less a query."""

    def __init__(self, folder: Path, *, for_batches: bool = False, resident: bool = False) -> None:
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            from tokenizers import Tokenizer

            onnxruntime = _onnxruntime()

            self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
            # Repacking weights for faster matrix products pays off over many queries; a
            # query process runs one, and skipping it saves ~60 ms of start-up.
            if not for_batches and not resident:
                options.add_session_config_entry("session.disable_prepacking", "1")
            if not for_batches:
                # Idle threads spinning for work would take the cores from FAISS and
                # Tantivy, which run right after the encoder in a query.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = onnxruntime.InferenceSession(
                str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
            self.dimension = int(meta["dimension"])
            self.tokenizer.no_padding()
            self.tokenizer.enable_truncation(int(meta["max_seq_length"]))
        except Exception as exc:  # onnxruntime's errors share no base class but Exception
            raise ModelError(f"cannot load the query encoder in {folder}: {exc!r}") from exc

    def encode(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised float32 embeddings, shape ``(len(texts), dimension)``."""
        encodings = self.tokenizer.encode_batch(texts)
        feeds = feeds_of(encodings)
        hidden = self.session.run(None, feeds)[0]
        return normalize(mean_pool(hidden, feeds["attention_mask"]))


def feeds_of(encodings: list[Any]) -> dict[str, np.ndarray]:
    """The network's inputs for a batch of tokenizer encodings, padded to the longest."""
    width = max(len(e.ids) for e in encodings)
    feeds = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in _INPUTS}
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        feeds["input_ids"][row, :n] = encoding.ids
        feeds["attention_mask"][row, :n] = encoding.attention_mask
        feeds["token_type_ids"][row, :n] = encoding.type_ids
    return feeds


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling: the average of the unmasked token vectors."""
    weights = mask[..., None].astype(np.float32)
    return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


def span_vectors(
    hidden: np.ndarray, offsets: list[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> np.ndarray:
    """One vector per character span of a text, pooled from that text's token vectors.

    "Late chunking" (Günther et al., 2024): the sentences of a passage get their vectors
    from the passage's own forward pass, so each is read in its context and the build
    pays for one pass per passage, not one more per sentence. ``offsets`` are the
    tokens' character offsets (special tokens have empty ones and are left out); a span
    that no token falls in gets the mean of the whole text."""
    starts = np.array([s for s, e in offsets], dtype=np.int64)
    real = np.array([e > s for s, e in offsets], dtype=bool)
    out = np.empty((len(spans), hidden.shape[-1]), dtype=np.float32)
    for i, (start, end) in enumerate(spans):
        inside = real & (starts >= start) & (starts < end)
        out[i] = hidden[inside].mean(axis=0) if inside.any() else hidden.mean(axis=0)
    return normalize(out)
