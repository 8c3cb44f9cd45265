"""The real model: query-encoder agreement, retrieval on the seeds, and a torch-free query path."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from diplosearch.encoder import QueryEncoder
from diplosearch.engine import Engine
from diplosearch.models import MiniLM
from diplosearch.store import IndexStore

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
    code = (
        "import sys, json\n"
        "from diplosearch.cli import cli\n"
        f"cli(['search', 'railway', '--json', '--seeds', {str(seeds)!r},"
        f" '--index', {str(index)!r}], standalone_mode=False)\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'sklearn')"
        " if m in sys.modules)\n"
        "print(json.dumps(heavy), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["results"]
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
