"""Acronyms: kept whole, dotted spellings joined, and the long forms a corpus defines.

A stemmer lower-cases and stems every word, so an acronym becomes a common word ("WHO" ->
"who", a stop word; "SALT" -> "salt") and "U.S.S.R." falls apart into four letters.
The lexical index therefore gets the acronyms of each passage in a field of their own,
unstemmed, with dotted spellings joined ("U.S.S.R." = "USSR"), and a query's
all-capitals words are looked up there.

Definitions are mined from the corpus at build time with the algorithm of Schwartz and
Hearst (2003): in "the Eurasian Economic Union (EEU)" the letters of the short form are
matched, right to left, to the starts of the words before the parenthesis. The table is
stored in the generation, and a query naming either form also finds passages that use
the other.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

#: A dotted acronym: "U.S.", "U.S.S.R.", "E.U." (two or more single letters with dots).
_DOTTED_RE = re.compile(r"\b(?:[A-Z]\.){2,}(?![A-Za-z])")
#: An acronym as written: two or more capitals (digits and "&" allowed inside, as in
#: "G20", "AT&T"), with an optional plural "s" ("MPs").
_ACRONYM_RE = re.compile(r"\b([A-Z][A-Z0-9&]*[A-Z0-9])s?\b")
#: "long form (SHORT)": the short form is 2-10 characters, starts with a letter, and
#: holds at least one capital.
_DEFINITION_RE = re.compile(r"\(\s*((?:[A-Za-z]\.?){1}[A-Za-z0-9.&-]{1,9})\s*\)")
_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
#: Acronyms found this often with one definition or more are kept; rarer pairs are noise.
MIN_DEFINITIONS = 1


def join_dotted(text: str) -> str:
    """``text`` with dotted acronyms written without dots: "U.S.S.R." -> "USSR"."""
    return _DOTTED_RE.sub(lambda m: m.group().replace(".", ""), text)


def acronyms(text: str) -> list[str]:
    """The acronyms in ``text``, as written in capitals, dots removed, plural dropped."""
    return [match.group(1) for match in _ACRONYM_RE.finditer(join_dotted(text))]


def _long_form(words: list[str], short: str) -> str | None:
    """Schwartz & Hearst's match: every letter of ``short``, from the right, found in the
    words before it, the first letter starting a word; the shortest such span."""
    letters = [c.lower() for c in short if c.isalnum()]
    if len(letters) < 2 or not letters[0].isalpha():
        return None
    window = words[-min(len(letters) + 5, len(letters) * 2) :]
    text = " ".join(window)
    s, t = len(letters) - 1, len(text) - 1
    while s >= 0:
        c = letters[s]
        while t >= 0 and (text[t].lower() != c or (s == 0 and t > 0 and text[t - 1].isalnum())):
            t -= 1
        if t < 0:
            return None
        t -= 1
        s -= 1
    start = text.rfind(" ", 0, t + 1) + 1
    long = text[start:].strip()
    if len(long.split()) < 2 or long.lower() == short.lower():
        return None
    return long


def definitions(texts: Iterable[str]) -> dict[str, str]:
    """Short form -> its most frequent long form, from "long form (SHORT)" in ``texts``."""
    pairs: Counter[tuple[str, str]] = Counter()
    for text in texts:
        if "(" not in text:
            continue
        for match in _DEFINITION_RE.finditer(text):
            short = match.group(1).replace(".", "")
            if not any(c.isupper() for c in short) or not short[0].isalpha():
                continue
            before = text[max(0, match.start() - 200) : match.start()]
            words = _WORD_RE.findall(before)
            long = _long_form(words, short)
            if long:
                pairs[(short.upper(), long)] += 1
    best: dict[str, tuple[int, str]] = {}
    for (short, long), count in pairs.items():
        if count >= MIN_DEFINITIONS and count > best.get(short, (0, ""))[0]:
            best[short] = (count, long)
    return {short: long for short, (_, long) in sorted(best.items())}
