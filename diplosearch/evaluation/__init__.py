"""Measuring retrieval quality: judgement files, metrics, and pooling for new judgements.

The judged sets, how they were pooled and judged, and how to grow them are described in
``docs/evaluation.md``.
"""
