"""Turn a user's question into the text that is embedded.

"What was said about X" is how analysts ask, but the frame carries no topic: embedded
as is, "said" pulls every reported-speech paragraph towards the query and the passages
about X sink (on the shipped seeds the railway statements drop from ranks 1-9 to 1-14).
Only impersonal frames are removed; anything naming who spoke stays, because the speaker
is part of the question.
"""

from __future__ import annotations

import re
import unicodedata

_VERBS = (
    r"(?:said|stated|reported|written|announced|agreed|discussed|proposed|decided|"
    r"mentioned|promised|pledged|signed|made)"
)
_GROUPS = (
    r"(?:presidents|leaders|officials|politicians|ministers|governments|government|"
    r"countries|people|experts|critics|analysts|they)"
)
_FRAME_RE = re.compile(
    r"^\s*(?:"
    r"(?:what|which\s+statements?|anything)\s+(?:was|were|has\s+been|have\s+been|is|are|got)\s+"
    + _VERBS
    + r"|(?:tell\s+me|show\s+me|find|search\s+for|look\s+for)(?:\s+(?:everything|anything|all))?"
    r"|(?:statements?|reports?|news|remarks)"
    # Speakers named only by their kind ("what did presidents say about X"): every
    # speaker of such a corpus is one, so the frame names no one in particular.
    r"|(?:what|how)\s+(?:did|do|does|have|has)\s+(?:the\s+)?" + _GROUPS + r"\s+"
    r"(?:say|said|talk|talked|think|thought|speak|spoken|spoke)"
    r")\s+(?:about|on|regarding|concerning|of|over|for|in)\s+(?P<topic>\S.*?)\s*[?.!]*\s*$",
    re.IGNORECASE | re.DOTALL,
)


def focus(query: str) -> str:
    """The topic of ``query`` with an impersonal question frame removed, else ``query``."""
    match = _FRAME_RE.match(query)
    return match["topic"] if match else query.strip()


def clean(query: str) -> str:
    """``query`` with every lone surrogate replaced by U+FFFD (a command line holding bytes
    that are not UTF-8 reaches Python as such surrogates, which no encoder accepts), in
    Unicode's composed form (NFC), as documents are indexed: the same word typed with a
    combining accent or a precomposed letter finds the same passages."""
    if any("\ud800" <= c <= "\udfff" for c in query):
        query = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in query)
    return unicodedata.normalize("NFC", query)
