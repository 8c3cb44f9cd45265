"""Which FAISS index holds the vectors: exact while it is fast enough, then HNSW.

Exact search (``IndexFlatIP``) reads every vector: at 384 dimensions that is ~1.5 ms per
10k chunks on two cores, so it stays under the 20 ms warm-query budget up to ~100k chunks
and misses it well before 1M. Past ``FLAT_LIMIT`` the index is HNSW (``IndexHNSWFlat``),
whose search touches a few thousand vectors whatever the size. Its parameters come from
``benchmarks/RESULTS.md`` (real MiniLM vectors, duplicated with noise to 1M): M = 32 and
efSearch = 128 keep Recall@10 against exact search above 0.98 at 1M chunks, where smaller
settings fell below it. HNSW stores the full vectors, so reconstruction (duplicate
folding, ``verify``) works as with the flat index.
"""

from __future__ import annotations

from typing import Any

import numpy as np

INDEX_TYPES = ("auto", "flat", "hnsw")
#: Largest index kept exact under ``auto``.
FLAT_LIMIT = 100_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def resolve(request: str, count: int) -> str:
    """The index type to build for ``count`` vectors when ``request`` was asked for."""
    if request not in INDEX_TYPES:
        raise ValueError(f"unknown index type {request!r}")
    if request != "auto":
        return request
    return "flat" if count <= FLAT_LIMIT else "hnsw"


def build(kind: str, vectors: np.ndarray, dimension: int) -> Any:
    """A FAISS inner-product index of ``kind`` over L2-normalised ``vectors`` (cosine)."""
    import faiss

    if kind == "flat":
        index = faiss.IndexFlatIP(dimension)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH  # saved with the index
    else:
        raise ValueError(f"unknown index type {kind!r}")
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def kind_of(index: Any) -> str:
    """The type of a loaded index, to check it against the manifest."""
    import faiss

    if isinstance(index, faiss.IndexHNSWFlat):
        return "hnsw"
    if isinstance(index, faiss.IndexFlatIP):
        return "flat"
    return type(index).__name__
