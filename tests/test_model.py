"""The real model: query-encoder agreement, retrieval on the seeds, and a torch-free query path."""

from __future__ import annotations

import numpy as np

from diplosearch.encoder import QueryEncoder
from diplosearch.engine import Engine
from diplosearch.models import MiniLM
from diplosearch.store import IndexStore
from tests.conftest import heavy_imports_of_a_search

RAILWAY_QUESTION = "what was said about the China-Kyrgyzstan-Uzbekistan railway"
#: The five railway statements in the seeds, as (file prefix, line).
RAILWAY_STATEMENTS = {("000", 16), ("001", 256), ("002", 11), ("003", 17), ("003", 27)}


def test_onnx_query_encoder_agrees_with_sentence_transformers(real_index):
    _seeds, index = real_index
    store = IndexStore(index)
    manifest = store.read_manifest()
    loaded = store.load(manifest.model, manifest.dimension)
    texts = [c.text for c in loaded.chunks]
    # Longer than the 256-piece window: both sides must truncate the same way.
    texts.append(" ".join(texts[:20]))
    model = MiniLM()
    assert model.count_tokens(texts[-1]) > 2 * model.max_seq_length
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model.folder), device="cpu").encode(
        texts, normalize_embeddings=True, convert_to_numpy=True
    )
    onnx = QueryEncoder(store.encoder_dir(manifest.encoder)).encode(texts)
    cosines = (reference * onnx).sum(axis=1)
    assert cosines.min() >= 0.9999, cosines.min()
    # A resident process's encoder (weights prepacked) embeds alike.
    resident = QueryEncoder(store.encoder_dir(manifest.encoder), resident=True).encode(texts)
    assert (resident * reference).sum(axis=1).min() >= 0.9999
    # The vectors in the index are the model's own.
    stored = loaded.faiss_index.reconstruct_n(0, loaded.faiss_index.ntotal)
    assert np.allclose(stored, reference[:-1], atol=1e-5)


def test_railway_question_finds_all_five_statements(real_index):
    seeds, index = real_index
    response = Engine(seeds, index).search(RAILWAY_QUESTION, k=10, refresh=False)
    found = {(r.source[:3], r.lines[0]) for r in response.results}
    assert found >= RAILWAY_STATEMENTS, sorted(RAILWAY_STATEMENTS - found)


def test_query_path_never_imports_torch(real_index):
    seeds, index = real_index
    assert heavy_imports_of_a_search(seeds, index, "railway") == []
