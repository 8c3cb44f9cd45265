"""Which language a document is written in, by py3langid.

py3langid (a maintained fork of langid.py: 97 languages, a 2 MB model of numpy arrays,
about a millisecond a document) is small enough to run on every document of a build. The
language decides how BM25 analyses the document (see lexical.py) and is shown by
``status``; the shipped embedding model reads English only, which ``status`` says when a
corpus holds other languages.
"""

from __future__ import annotations

from functools import cache
from typing import Any

#: Characters of a document the detector reads: its start says enough.
SAMPLE = 10_000
#: Fewer letters than this and no language is claimed.
MIN_LETTERS = 20
#: The detector's codes for varieties of Chinese, as one.
_ALIASES = {"wuu": "zh", "yue": "zh", "zh-cn": "zh", "zh-tw": "zh"}
#: English names of the languages a corpus is likely to hold, for messages.
NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fa": "Persian",
    "fr": "French", "it": "Italian", "ja": "Japanese", "kk": "Kazakh", "ko": "Korean",
    "ky": "Kyrgyz", "pl": "Polish", "pt": "Portuguese", "ru": "Russian", "tr": "Turkish",
    "uk": "Ukrainian", "uz": "Uzbek", "zh": "Chinese",
}  # fmt: skip


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(text: str) -> str | None:
    """The ISO 639-1 code of ``text``'s language, or ``None`` when it is too short to tell
    or the detector is unsure."""
    sample = text[:SAMPLE]
    if sum(c.isalpha() for c in sample) < MIN_LETTERS:
        return None
    code, probability = _identifier().classify(sample)
    if probability < 0.5 or not code.isalpha() or code in ("zxx", "und"):
        return None
    return _ALIASES.get(code, code)


def name(code: str | None) -> str:
    """A language's English name for messages ("Russian"), or its code."""
    if code is None:
        return "unknown"
    return NAMES.get(code, code)
