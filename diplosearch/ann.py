"""Which FAISS index holds the vectors: exact while it is fast enough, then HNSW.

Exact search (``IndexFlatIP``) reads every vector: at 384 dimensions one scan took 8.8 ms
at 100k chunks and 120.6 ms at 1M on two cores (benchmarks/RESULTS.md), so exact search is
kept while it costs a few milliseconds and given up well before 1M. Past ``FLAT_LIMIT``
the index is HNSW (``IndexHNSWFlat``), whose search touches a few thousand vectors
whatever the size. Its parameters were chosen
on the benchmark's 1M set (real MiniLM vectors of BBC News and SOTU copied with noise,
queried by 200 real BBC headlines), for Recall@10 against exact search:

    M=32, efConstruction=80:   efSearch 128: 0.912, 256: 0.956, 512: 0.978, 1024: 0.995 (1.7 ms)
    M=48, efConstruction=120:  efSearch 128: 0.975, 256: 0.985, 512: 0.993 (0.9 ms), 1024: 1.000

M=48 with efSearch=512 clears 0.98 with a margin at under a millisecond; the denser graph
costs build time (178 s against 106 s for 1M vectors on 2 cores), small next to embedding
a million chunks. HNSW stores the full vectors, so reconstruction (duplicate folding,
``verify``) works as with the flat index.
"""

from __future__ import annotations

from typing import Any

import numpy as np

INDEX_TYPES = ("auto", "flat", "hnsw")
#: Largest index kept exact under ``auto``.
FLAT_LIMIT = 100_000
HNSW_M = 48
HNSW_EF_CONSTRUCTION = 120
HNSW_EF_SEARCH = 512


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
