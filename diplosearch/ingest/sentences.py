"""Sentence spans, from pysbd: abbreviations such as "H.E.", "Oct." and "U.S." do not end
a sentence, which a hand-written splitter gets wrong in exactly the datelines we need."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any


@cache
def _segmenter() -> Any:  # pysbd builds many regexes: build it once per process.
    import re

    import pysbd

    # pysbd compiles a pattern for each abbreviation it meets; with more distinct ones
    # than re's cache holds (512), news text recompiles them paragraph after paragraph:
    # on BBC News, 25k compiles for 2.6k paragraphs, a quarter of all chunking time.
    if getattr(re, "_MAXCACHE", 4096) < 4096:
        re._MAXCACHE = 4096  # type: ignore[attr-defined]

    return pysbd.Segmenter(language="en", clean=False, char_span=True)


@lru_cache(maxsize=4096)
def sentence_spans(text: str) -> tuple[tuple[int, int], ...]:
    """``(start, end)`` of each sentence of ``text``, surrounding white space excluded.

    Cached: pysbd is the slowest step of chunking, and the chunker and the speaker rules
    both ask for the same paragraph's sentences. pysbd's own ``char_span`` locates each
    sentence with a regex of its escaped text, a pattern compiled afresh per sentence
    (over a third of all chunking time on BBC News); its sentences are verbatim pieces of
    ``text`` in order, so a forward ``str.find`` from the last end finds the same spans."""
    segmenter = _segmenter()
    spans = []
    cursor = 0
    for sentence in segmenter.processor(text).process() if text else ():
        start = text.find(sentence, cursor)
        if start < 0:
            continue  # as pysbd: a sentence not found verbatim has no span
        end = start + len(sentence)
        cursor = end
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return tuple(spans) or (((0, len(text)),) if text.strip() else ())
