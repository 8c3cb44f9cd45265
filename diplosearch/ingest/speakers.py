"""Who said it: speakers of reported statements, from the reporting patterns of news prose.

Rules, applied sentence by sentence through a document (see the README for their limits):

* ``NAME said`` / ``said NAME`` / ``NAME, for his part, said`` / ``For his part, NAME said``
  with the usual reporting verbs (noted, added, stressed, urged, called, ...); titles in
  front of a name are dropped (``Chinese President Xi Jinping`` -> ``Xi Jinping``).
* ``he said`` / ``she added`` / ``, he stressed,``: the last named speaker of the same
  report (a digest's sub-articles do not share speakers).
* ``The Chinese president said``: the most recently mentioned person who was introduced
  with that nationality and title (``Chinese President Xi Jinping``); ``the minister
  noted`` without a nationality: the current speaker.
* A surname alone (``Xi``, ``Japarov``) becomes the full name it belongs to, preferring the
  most recent mention in the document (``Akylbek Japarov`` and ``Sadyr Japarov`` are two
  people), then a unique full name elsewhere in the corpus.
* Across documents, two spellings with the same given name and near-identical surnames
  (``Sadyr Zhaparov`` / ``Sadyr Japarov``) are one person, named by the commoner spelling.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from diplosearch.ingest.sentences import sentence_spans

_VERBS = (
    r"said|says|noted|added|stressed|stated|told|urged|called|expressed|emphasized|"
    r"emphasised|underlined|highlighted|thanked|congratulated|hoped|proposed|offered|"
    r"remarked|pointed out|made the remarks|welcomed|reiterated|warned|announced|expects|"
    r"believes|wished"
)
_WORD = r"[A-Z][\w'’.-]*"
_NAME = rf"(?:{_WORD}\s+){{0,5}}{_WORD}"
_PART = r"(?i:(?:for|on) (?:his|her) part)"

#: ``[For his part,] NAME [, for his part,] [also] said``, at a sentence or clause start.
_BEFORE_RE = re.compile(
    rf"(?:^|[,;:]\s+|\s(?:—|--|–)\s+|\bthat\s+)"
    rf"(?:{_PART},\s+|(?i:in (?:his|her) (?:speech|remarks))[^,]*,\s+)?"
    rf"(?P<who>{_NAME})(?:,\s+{_PART},)?\s+(?:also\s+|further\s+|then\s+|once again\s+)?"
    rf"(?:{_VERBS})\b"
)
#: ``..., said NAME`` (the name after the verb).
_AFTER_RE = re.compile(
    rf"\b(?:said|noted|added|stressed)\s+(?P<who>{_NAME})"
    r"(?=\s*(?:[,.;:]|$)|\s+(?:here|on|in|at|during|when|while|after|before|today)\b)"
)
#: ``[The following day,] Li met with ...``: who a later "he" most likely refers to.
_SUBJECT_RE = re.compile(rf"(?:^|,\s+)(?P<who>{_NAME})\s+(?:also\s+)?[a-z]+")
#: ``Full Text: Speech by Chinese Premier Li Qiang at ...``: the speaker of a whole section.
_SPEECH_RE = re.compile(rf"\b(?i:speech|remarks|address|statement) by (?P<who>{_NAME})")
_PRONOUN_RE = re.compile(
    rf"(?:^|[,;]\s+|\bthat\s+)(?:he|she)\s+(?:also\s+|further\s+)?(?:{_VERBS})\b", re.IGNORECASE
)
_ROLE_RE = re.compile(
    rf"(?:^|[,;]\s+)[Tt]he\s+(?:(?P<demonym>[A-Z]\w+)\s+)?(?P<role>(?i:president|premier|"
    rf"(?:prime |foreign |deputy )?minister|chancellor|spokesperson|spokesman|ambassador))"
    rf"\s+(?:also\s+)?(?:{_VERBS})\b"
)
#: ``Kyrgyz President Sadyr Japarov``: a titled mention, remembered for role references.
_TITLED_RE = re.compile(rf"(?P<who>(?:{_WORD}\s+){{0,6}}(?:{_WORD}))")

TITLES = {
    "president", "vice", "first", "premier", "prime", "minister", "foreign", "deputy",
    "state", "councilor", "councillor", "chairman", "chairwoman", "secretary", "general",
    "secretary-general", "ambassador", "spokesperson", "spokesman", "spokeswoman", "h.e.",
    "mr.", "mrs.", "ms.", "dr.", "his", "her", "excellency", "king", "queen", "chancellor",
    "envoy", "counterpart", "leader", "head", "of", "the", "former", "acting", "senior",
}  # fmt: skip
#: Capitalised words that open sentences or name places and bodies, never a person.
NOT_NAMES = {
    "china", "chinese", "beijing", "kyrgyzstan", "kyrgyz", "tajikistan", "tajik",
    "turkmenistan", "turkmen", "uzbekistan", "uzbek", "kazakhstan", "kazakh", "russia",
    "russian", "mongolia", "mongolian", "iran", "iranian", "belarus", "belarusian", "india",
    "indian", "pakistan", "pakistani", "afghanistan", "sco", "un", "brics", "the", "this",
    "that", "these", "those", "it", "both", "they", "we", "he", "she", "i", "you", "and",
    "but", "also", "asia", "central", "xinhua", "efforts", "side", "sides", "two",
    "countries", "country", "government", "ministry", "organization", "organisation",
    "council", "summit", "meeting", "participants", "leaders", "members", "member",
    "states", "state", "president", "premier", "minister", "when", "while", "noting",
    "adding", "there", "here", "in", "on", "at", "as", "for", "with", "after", "before",
    "during", "over", "united", "nations", "european", "union", "washington", "moscow",
}  # fmt: skip
_DEMONYM_HINT = re.compile(r"(?:ese|ian|an|ish|i|ek|men|ik|yz|ic)$", re.IGNORECASE)


def _split_sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


def _clean(raw: str) -> tuple[str | None, set[str]]:
    """(name, title words) from a capitalised run like ``Iran's First Vice President X Y``."""
    tokens = raw.split()
    titles: set[str] = set()
    while tokens:
        word = tokens[0].lower().rstrip(",")
        if word in TITLES or word.endswith(("'s", "’s")) or word in NOT_NAMES:
            titles.add(word.removesuffix("'s").removesuffix("’s"))
            tokens.pop(0)
        elif len(tokens) > 1 and _DEMONYM_HINT.search(word) and tokens[1].lower() in TITLES:
            titles.add(word)
            tokens.pop(0)
        else:
            break
    tokens = [t.rstrip(".,") for t in tokens]
    parts = [p.lower() for t in tokens for p in t.split("-")]
    if not tokens or any(p in NOT_NAMES or p in TITLES for p in parts):
        return None, titles
    if not all(t[:1].isupper() for t in tokens) or any(t.isupper() and len(t) > 1 for t in tokens):
        return None, titles
    return " ".join(tokens), titles


@dataclass
class _Tracker:
    """Mentions and speakers seen so far in one report."""

    titles: dict[str, set[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    last_speaker: str | None = None

    def mention(self, name: str, titles: set[str]) -> None:
        self.titles.setdefault(name, set()).update(titles)
        if name in self.order:
            self.order.remove(name)
        self.order.append(name)

    def full_name(self, name: str) -> str:
        """A bare surname as the full name most recently mentioned with it."""
        if " " in name:
            return name
        for known in reversed(self.order):
            parts = known.split()
            if len(parts) > 1 and name in (parts[0], parts[-1]):
                return known
        return name

    def by_role(self, demonym: str | None, role: str) -> str | None:
        """``the Chinese president``: the latest person introduced with that nationality and
        title. ``the minister`` alone: the current speaker, as news prose uses it."""
        if not demonym:
            return self.last_speaker
        wanted = {w.lower() for w in role.split()} - {"prime", "foreign", "deputy"}
        wanted.add(demonym.lower())
        for known in reversed(self.order):
            if wanted <= self.titles.get(known, set()):
                return known
        return None


def _mentions(sentence: str, tracker: _Tracker) -> None:
    for match in _TITLED_RE.finditer(sentence):
        raw = match["who"]
        if len(raw.split()) < 2:
            continue
        name, titles = _clean(raw)
        if name and titles & TITLES:
            tracker.mention(name, titles)


def _section_speaker(section: str | None) -> str | None:
    match = _SPEECH_RE.search(section or "")
    if not match:
        return None
    name, _ = _clean(re.split(r"\s+(?:at|on|in|to)\s+", match["who"])[0])
    return name


def speakers_of_paragraphs(paragraphs: Sequence[tuple[str, str | None]]) -> list[list[str]]:
    """Speakers of each ``(text, section)`` paragraph of one document, in order of speech."""
    results: list[list[str]] = []
    tracker = _Tracker()
    section: object = object()
    default: str | None = None
    for text, paragraph_section in paragraphs:
        if paragraph_section != section:
            section, tracker = paragraph_section, _Tracker()
            default = _section_speaker(paragraph_section)
        found: list[str] = []
        for sentence in _split_sentences(text):
            _mentions(sentence, tracker)
            speaker = _named_speaker(sentence, tracker, found)
            if speaker is None:
                role = _ROLE_RE.search(sentence)
                if role:
                    speaker = tracker.by_role(role["demonym"], role["role"])
                elif _PRONOUN_RE.search(sentence):
                    speaker = tracker.last_speaker
                if speaker:
                    found.append(speaker)
            if speaker:
                tracker.last_speaker = speaker
            else:
                _note_subject(sentence, tracker)
        if not found and default:
            found.append(default)
        results.append(list(dict.fromkeys(found)))
    return results


def _named_speaker(sentence: str, tracker: _Tracker, found: list[str]) -> str | None:
    named = [m["who"] for m in _BEFORE_RE.finditer(sentence)]
    named += [m["who"] for m in _AFTER_RE.finditer(sentence)]
    speaker = None
    for raw in named:
        name, titles = _clean(raw)
        if name:
            speaker = tracker.full_name(name)
            tracker.mention(speaker, titles)
            found.append(speaker)
    return speaker


def _note_subject(sentence: str, tracker: _Tracker) -> None:
    """A known person acting as a sentence's subject is whom a following "he" means."""
    for match in _SUBJECT_RE.finditer(sentence):
        name, _ = _clean(match["who"])
        if name and tracker.full_name(name) in tracker.order:
            tracker.last_speaker = tracker.full_name(name)
            return


def canonical_names(names: Iterable[str]) -> dict[str, str]:
    """Map every spelling to one name per person, across the corpus.

    Bare surnames go to the unique full name ending or starting with them; full names
    with the same given name and near-identical surnames merge, under the commoner one.
    """
    counts = Counter(names)
    full = sorted((n for n in counts if " " in n), key=lambda n: (-counts[n], n))
    mapping: dict[str, str] = {}
    # Indexed by given name and by word, so a corpus with thousands of people is not
    # compared pairwise (3 s of a BBC News build when it was).
    kept_by_first: dict[str, list[str]] = {}
    owners_of: dict[str, set[str]] = {}
    for name in full:
        words = name.split()
        first, last = words[0], words[-1]
        kept_names = kept_by_first.setdefault(first, [])
        for kept in kept_names:  # earlier, commoner names that are their own canonical
            if difflib.SequenceMatcher(None, kept.split()[-1], last).ratio() >= 0.75:
                mapping[name] = kept
                break
        else:
            mapping[name] = name
            kept_names.append(name)
        for word in {first, last}:
            owners_of.setdefault(word, set()).add(mapping[name])
    for name in counts:
        if " " in name:
            continue
        owners = set(owners_of.get(name, ()))
        mapping[name] = owners.pop() if len(owners) == 1 else name
    return mapping
