"""Embedding on a Ray cluster: the one costly step of a build, spread over many machines.

Everything else stays local and unchanged: chunking, the embedding cache, the FAISS and
BM25 indexes, the manifest and the atomic commit. :class:`RayModel` wraps the local model
and replaces only :meth:`embed_passages`: texts are grouped by length into batches, and
a pool of Ray actors, one per CPU of the cluster, each holding the model once, embeds
them. Results come back in order, so the index equals a local build's (same chunk ids,
same vectors to float rounding). Requires ``pip install 'diplosearch[ray]'`` on every node.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from diplosearch.errors import ModelError
from diplosearch.models import DEFAULT_MODEL, MiniLM, Progress, Spans

#: Texts per task: large enough to amortise a round trip, small enough to balance load.
BATCH_TEXTS = 256


class _Embedder:
    """A Ray actor's state: the model, loaded once per worker process."""

    def __init__(self, backend: str, folder: Path | None = None) -> None:
        """``folder``: the model folder of ``index --model PATH`` (None: the shipped model,
        wherever the worker's package is); every node must have it at that path."""
        self.model = MiniLM(folder, backend=backend)
        #: Where the ONNX backend finds its graph; torch and bf16 need no folder.
        self.encoder = self.model.folder
        if backend == "onnx":  # the worker's own export of the same graph
            self.encoder = Path(tempfile.mkdtemp(prefix="diplosearch-encoder-")) / "encoder"
            self.model.ensure_query_encoder(self.encoder)
        else:
            import torch

            torch.set_num_threads(1)  # one actor per CPU

    def embed(self, texts: list[str], spans: list[Spans]) -> list[np.ndarray]:
        return self.model.embed_passages(texts, spans, self.encoder)


class RayModel:
    """A model whose passages are embedded on Ray; all else is the wrapped model's."""

    def __init__(self, model: MiniLM, address: str | None) -> None:
        self._model = model
        self.address = address

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def embed_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Spans],
        folder: Path,
        progress: Progress | None = None,
    ) -> list[np.ndarray]:
        try:
            import ray
            from ray.util import ActorPool
        except ImportError as exc:
            raise ModelError("--ray needs Ray: pip install 'diplosearch[ray]'") from exc
        if progress:
            progress(0, len(texts))
        started = not ray.is_initialized()
        try:
            if started:
                ray.init(
                    address=self.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level="ERROR",
                )
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            batches = [order[i : i + BATCH_TEXTS] for i in range(0, len(order), BATCH_TEXTS)]
            actor = ray.remote(num_cpus=1)(_Embedder)
            folder = None if self._model.name == DEFAULT_MODEL else self._model.folder
            pool = ActorPool(
                [actor.remote(self._model.backend, folder) for _ in range(min(cpus, len(batches)))]
            )
            work = (([texts[i] for i in b], [spans[i] for i in b]) for b in batches)
            out: list[np.ndarray] = [np.empty(0)] * len(texts)
            done = 0
            for batch, rows in zip(
                batches, pool.map(lambda a, job: a.embed.remote(*job), work), strict=True
            ):
                for i, row in zip(batch, rows, strict=True):
                    out[i] = row
                done += len(batch)
                if progress:
                    progress(done, len(texts))
            return out
        except ModelError:
            raise
        except Exception as exc:  # Ray's errors (connection, worker death) share no base
            raise ModelError(f"the Ray build failed: {exc}") from exc
        finally:
            if started and ray.is_initialized():
                ray.shutdown()
