"""Sentence spans, from pysbd: abbreviations such as "H.E.", "Oct." and "U.S." do not end
a sentence, which a hand-written splitter gets wrong in exactly the datelines we need."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _segmenter() -> Any:  # pysbd builds many regexes: build it once per process.
    import pysbd

    return pysbd.Segmenter(language="en", clean=False, char_span=True)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, surrounding white space excluded."""
    spans = []
    for span in _segmenter().segment(text):
        start, end = span.start, span.end
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return spans or ([(0, len(text))] if text.strip() else [])
