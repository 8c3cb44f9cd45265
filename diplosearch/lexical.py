"""Lexical retrieval: BM25 over the chunk table with Tantivy.

Dense vectors miss exact names (a workshop's name, an acronym, a city such as "Aktobe");
BM25 gets them. Tantivy (Lucene's design in Rust) stores its inverted index with positions
beside the vectors, so ``"Luban Workshop"`` in quotes matches those words adjacent and in
order, and it ranks the top k by block-max WAND without scoring every match: SQLite FTS5,
used before, scored all of them (50 ms for a headline at a million chunks, 0.8 ms here).
Each document carries its chunk row as a fast field, as FAISS row i is chunk i.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from diplosearch.acronyms import acronyms, join_dotted

#: Field names of the Tantivy schema: the passage's words (stemmed, with positions for
#: phrases), its context (the document's title and the heading it sits under), its
#: acronyms (unstemmed, see acronyms.py) and its row (a fast field, and indexed so that a
#: query can score a given set of rows).
TEXT, CONTEXT, ACRONYMS, ROW = "text", "context", "acronyms", "row"
#: Analyzers: stemmed words, and acronyms kept whole.
ANALYZER, ACRONYM_ANALYZER = "diplosearch", "diplosearch-acronym"
#: Tantivy's lock files: empty, released when the writer closes; not part of the index.
LOCK_FILES = (".tantivy-meta.lock", ".tantivy-writer.lock")

#: Words that carry no topic in a question; BM25 would give them little weight anyway,
#: but with OR semantics they would let nearly every chunk match.
STOPWORDS = frozenset(
    (  # noqa: SIM905 - one word list, easier to read than 130 quoted strings
        "a about above after again against all also am an and any are as at be because been "
        "before being below between both but by can could did do does doing down during each "
        "few for from further had has have having he her here hers him his how i if in into "
        "is it its itself just me more most my no nor not now of off on once only or other "
        "our ours out over own said same say says she should so some such than that the "
        "their theirs them then there these they this those through to too under until up "
        "us very was we were what when where which while who whom why will with would you your"
        # what is left of contractions once split at the apostrophe: "don't" -> don, t
        " t s d ll m re ve don doesn didn isn aren wasn weren won couldn shouldn wouldn"
    ).split()
)
_PHRASE_RE = re.compile(r'"([^"]*)"')
_TERM_RE = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into quoted phrases (must match), loose words and acronyms."""

    phrases: tuple[str, ...]
    words: tuple[str, ...]
    #: The query without its quote marks: what the dense side embeds.
    plain: str
    #: Words written in capitals ("EEU", "U.S.S.R." as "USSR"): looked up unstemmed.
    acronyms: tuple[str, ...] = ()


def parse_query(query: str) -> ParsedQuery:
    phrases = tuple(p.strip() for p in _PHRASE_RE.findall(query) if _TERM_RE.search(p))
    rest = join_dotted(_PHRASE_RE.sub(" ", query))
    words = tuple(w for w in _TERM_RE.findall(rest.lower()) if w not in STOPWORDS)
    plain = re.sub(r"\s+", " ", query.replace('"', " ")).strip()
    return ParsedQuery(
        phrases=phrases, words=words, plain=plain, acronyms=tuple(dict.fromkeys(acronyms(rest)))
    )


def _quote(text: str) -> str:
    """A quoted query-parser phrase of word tokens: user text never reaches the syntax."""
    return '"' + " ".join(_TERM_RE.findall(text)) + '"'


@cache
def analyzer() -> Any:
    """Words split on anything not a letter or digit, lower-cased, accents folded,
    Snowball-stemmed (as FTS5's ``porter unicode61``): "Kyrgyz" finds "kyrgyz"."""
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


#: Tantivy's Snowball stemmers by ISO 639-1 code. English is the index's own analyzer;
#: a document in one of these languages is stemmed in its language first (see analyse).
SNOWBALL = {
    "ar": "arabic", "da": "danish", "de": "german", "el": "greek", "es": "spanish",
    "fi": "finnish", "fr": "french", "hu": "hungarian", "it": "italian", "nb": "norwegian",
    "nl": "dutch", "no": "norwegian", "pt": "portuguese", "ro": "romanian", "ru": "russian",
    "sv": "swedish", "ta": "tamil", "tr": "turkish",
}  # fmt: skip
#: Languages analysed before the index's own analyzer: Snowball's, and Chinese (words cut
#: by jieba: Chinese is written without spaces, so it has no words to match otherwise).
ANALYSED = frozenset((*SNOWBALL, "zh"))
_CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@cache
def _language_analyzer(code: str) -> Any:
    """Lower-cased words Snowball-stemmed in ``code``'s language, then accents folded
    (stemming first: Snowball's rules expect the accents)."""
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stemmer(SNOWBALL[code]))
        .build()
    )


def _segment(text: str) -> list[str]:
    """Chinese text cut into words by rjieba (jieba-rs: jieba's dictionary and HMM, built
    into a Rust extension that needs no cache file and loads in milliseconds)."""
    import rjieba

    return [word for word in rjieba.cut(text) if _TERM_RE.search(word)]


def analyse(text: str, language: str | None) -> str:
    """``text``, of a document in ``language``, as the index's analyzer is to see it:
    words stemmed in their language ("железной дороги" as "железн дорог"), Chinese cut
    into words ("中吉乌铁路" as "中吉乌 铁路"); unchanged for English and for languages
    with no analyzer. Queries are analysed alike for each language the corpus holds."""
    if language == "zh":
        return " ".join(_segment(text)) if _CJK_RE.search(text) else text
    if language in SNOWBALL:
        return " ".join(_language_analyzer(language).analyze(text))
    return text


def _acronym_analyzer() -> Any:
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .build()
    )


def _register(index: Any) -> None:
    index.register_tokenizer(ANALYZER, analyzer())
    index.register_tokenizer(ACRONYM_ANALYZER, _acronym_analyzer())


def _schema() -> Any:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field(TEXT, stored=False, tokenizer_name=ANALYZER, index_option="position")
    builder.add_text_field(CONTEXT, stored=False, tokenizer_name=ANALYZER, index_option="freq")
    builder.add_text_field(
        ACRONYMS, stored=False, tokenizer_name=ACRONYM_ANALYZER, index_option="freq"
    )
    builder.add_unsigned_field(ROW, stored=False, indexed=True, fast=True)
    return builder.build()


def write(
    folder: Path,
    texts: Sequence[str],
    contexts: Sequence[str],
    languages: Sequence[str | None] | None = None,
) -> None:
    """Index ``texts`` (row i is ``texts[i]``, under the title and heading ``contexts[i]``,
    in the language ``languages[i]``) into the new folder ``folder``.

    Any failure (a full disk) raises :class:`OSError`; Tantivy reports it as ValueError."""
    import tantivy

    from diplosearch.store.folders import follow_umask

    folder.mkdir()
    try:
        index = tantivy.Index(_schema(), path=str(folder))
        _register(index)
        # One indexing thread: documents keep row order, so equal inputs give equal
        # segments and ties rank alike in every build (two threads build 2x faster
        # but split rows between segments at random).
        writer = index.writer(heap_size=256_000_000, num_threads=1)
        languages = languages or [None] * len(texts)
        rows = zip(texts, contexts, languages, strict=True)
        for row, (text, context, language) in enumerate(rows):
            document = tantivy.Document()
            document.add_text(TEXT, analyse(join_dotted(text), language))
            document.add_text(CONTEXT, analyse(join_dotted(context), language))
            document.add_text(ACRONYMS, " ".join(acronyms(text)))
            document.add_unsigned(ROW, row)
            writer.add_document(document)
        writer.commit()
        writer.wait_merging_threads()
    except ValueError as exc:
        raise OSError(f"lexical index {folder}: {exc}") from exc
    for name in LOCK_FILES:
        (folder / name).unlink(missing_ok=True)
    follow_umask(folder)


#: BM25 weight of a match in the context (title, heading) next to one in the passage:
#: chosen on the development halves of the judged sets (docs/evaluation.md).
CONTEXT_WEIGHT = 1.0
#: Query terms :meth:`LexicalIndex.holding` tells apart in one search (a float32 score
#: holds 2 ** 23 exactly); a query's further terms count as absent.
MAX_TERM_BITS = 22
#: Words that may come between two neighbouring query words for a passage to hold them
#: as a pair (the window of an unordered-window feature; chosen on the development halves).
NEAR = 8
#: BM25 weight of an acronym match in the acronym field (the text field also has it).
ACRONYM_WEIGHT = 1.0


def idf(documents: int, frequency: int) -> float:
    """BM25's inverse document frequency (as Lucene and Tantivy compute it)."""
    return math.log(1 + (documents - frequency + 0.5) / (frequency + 0.5))


def _reading_view(folder: Path) -> Path:
    """A private folder of links to ``folder``'s files, to open instead of ``folder``.

    Tantivy's reader creates and locks ``.tantivy-meta.lock`` in the folder it opens and
    has no read-only mode, so a shared index (another user's, a read-only mount) could not
    be searched. Opening the links instead, searching never writes in the index; the
    index's files are memory-mapped through them. ``folder`` itself if no private folder
    can be made."""
    try:
        view = Path(tempfile.mkdtemp(prefix="diplosearch-bm25-"))
    except OSError:
        return folder
    try:
        for entry in os.scandir(folder):
            if entry.name not in LOCK_FILES:
                os.symlink(os.path.abspath(entry.path), view / entry.name)
    except OSError:
        shutil.rmtree(view, ignore_errors=True)
        return folder
    return view


class LexicalIndex:
    def __init__(
        self,
        folder: Path,
        definitions: Mapping[str, str] | None = None,
        languages: Iterable[str | None] = (),
    ) -> None:
        """Open for reading; raises :class:`OSError` if ``folder`` is not a readable index
        (Tantivy memory-maps its files: opening reads almost nothing). ``definitions``
        maps the corpus's acronyms to their long forms (see acronyms.py); ``languages``
        are those of its documents, for which query words are analysed too."""
        #: Languages of the corpus whose documents were analysed (see analyse).
        self.languages = tuple(sorted({code for code in languages if code in ANALYSED}))
        import tantivy

        if not (folder / "meta.json").is_file():
            raise FileNotFoundError(folder / "meta.json")
        view = _reading_view(folder)
        try:
            self._index = tantivy.Index.open(str(view))
            # A generation never changes: no watcher thread polling meta.json.
            self._index.config_reader(reload_policy="Manual")
            _register(self._index)
            self._searcher = self._index.searcher()
        except ValueError as exc:
            raise OSError(str(exc)) from exc
        finally:
            if view != folder:  # the open files stay mapped; the links are not needed
                shutil.rmtree(view, ignore_errors=True)
        self._tantivy = tantivy
        self.definitions = dict(definitions or {})
        self._long_forms = {
            short: tuple(_TERM_RE.findall(long.lower())) for short, long in self.definitions.items()
        }

    def close(self) -> None:
        """Nothing to release by hand: the memory maps go with the object."""

    def count(self) -> int:
        return int(self._searcher.num_docs)

    def _phrase(self, text: str, field: str = TEXT) -> Any:
        return self._index.parse_query(_quote(join_dotted(text)), [field])

    def _acronym(self, short: str) -> Any:
        query = self._tantivy.Query
        return query.boost_query(
            query.term_query(self._index.schema, ACRONYMS, short.lower()), ACRONYM_WEIGHT
        )

    def expansions(self, query: ParsedQuery) -> tuple[list[str], list[str]]:
        """(long forms of the query's acronyms, acronyms whose long form the query names),
        from the corpus's own definitions."""
        longs = [self.definitions[a] for a in query.acronyms if a in self.definitions]
        words = tuple(_TERM_RE.findall(join_dotted(query.plain).lower()))
        shorts = [
            short
            for short, long in self._long_forms.items()
            if short not in query.acronyms and _contains(words, long)
        ]
        return longs, shorts

    def forms(self, word: str) -> list[str]:
        """``word`` as written, and as analysed for each language of the corpus (its
        Russian stem; the Chinese words it holds), each to be looked up as a phrase."""
        forms = [word]
        for language in self.languages:
            if language == "zh":
                forms += _segment(word) if _CJK_RE.search(word) else []
            elif (analysed := analyse(word, language)) and analysed != word:
                forms.append(analysed)
        return list(dict.fromkeys(forms))

    def _any_form(self, text: str, field: str = TEXT) -> Any:
        """A phrase query for ``text`` in any of the corpus's languages."""
        if not self.languages:
            return self._phrase(text, field)
        forms = [text]
        for language in self.languages:
            analysed = analyse(text, language)
            if analysed.strip() and analysed != text:
                forms.append(analysed)
        if len(forms) == 1:
            return self._phrase(text, field)
        occur = self._tantivy.Occur
        return self._tantivy.Query.boolean_query(
            [(occur.Should, self._phrase(form, field)) for form in dict.fromkeys(forms)]
        )

    def _clauses(self, query: ParsedQuery, *, phrases_must: bool = True) -> list[Any]:
        occur = self._tantivy.Occur
        boost = self._tantivy.Query.boost_query
        clauses = [(occur.Must if phrases_must else occur.Should, self._any_form(p))
                   for p in query.phrases]  # fmt: skip
        for word in dict.fromkeys(query.words):
            for form in self.forms(word):
                clauses.append((occur.Should, self._phrase(form)))
                if CONTEXT_WEIGHT:
                    clauses.append(
                        (occur.Should, boost(self._phrase(form, CONTEXT), CONTEXT_WEIGHT))
                    )
        longs, shorts = self.expansions(query)
        clauses += [(occur.Should, self._acronym(a)) for a in (*query.acronyms, *shorts)]
        clauses += [(occur.Should, self._phrase(long)) for long in longs]
        return clauses

    def _search(self, query: Any, limit: int) -> list[tuple[int, float]]:
        if limit > 1000:  # "all matches": Tantivy would reserve room for ``limit`` hits
            limit = self._searcher.search(query, 1, count=True).count
            if not limit:
                return []
        hits = self._searcher.search(query, limit, count=False).hits
        rows = self._searcher.fast_field_values(ROW, [address for _, address in hits])
        ranked = [(int(row), float(score)) for (score, _), row in zip(hits, rows, strict=True)]
        return sorted(ranked, key=lambda hit: (-hit[1], hit[0]))

    def rank(self, query: ParsedQuery, limit: int) -> list[tuple[int, float]]:
        """(row, BM25 score, higher is better) of the best ``limit`` rows.

        Every quoted phrase must match; loose words are OR-ed, so a chunk that has some of
        them still ranks, by BM25 (with phrases, the words only add to the score).
        Acronyms also match the acronym field, and the corpus's definitions of them."""
        clauses = self._clauses(query)
        if not clauses or limit <= 0:
            return []
        return self._search(self._tantivy.Query.boolean_query(clauses), limit)

    def _in_rows(self, rows: list[int]) -> tuple[Any, Any]:
        """A clause requiring one of ``rows`` (score 1): one term per row, OR-ed.

        Tantivy's term-set query would say the same, but it walks the whole row field
        (4.7 ms for 180 rows of a million); a union of single-row terms finds each row's
        one posting (1.3 ms)."""
        query, occur = self._tantivy.Query, self._tantivy.Occur
        terms = [(occur.Should, query.term_query(self._index.schema, ROW, row)) for row in rows]
        return (occur.Must, query.const_score_query(query.boolean_query(terms), 1.0))

    def scores(self, query: ParsedQuery, rows: Iterable[int]) -> dict[int, float]:
        """The BM25 score of each of ``rows`` (0 where nothing matches): the rows are
        required by a term set on the row field, which adds 1 to every score."""
        wanted = sorted(set(rows))
        clauses = self._clauses(query, phrases_must=False)
        if not wanted or not clauses:
            return dict.fromkeys(wanted, 0.0)
        combined = self._tantivy.Query.boolean_query([self._in_rows(wanted), *clauses])
        found = dict(self._search(combined, len(wanted)))
        return {row: max(0.0, found.get(row, 1.0) - 1.0) for row in wanted}

    def term_weights(self, query: ParsedQuery) -> dict[str, float]:
        """The query's terms as the index knows them (stems; acronyms as ``ACRONYMS:x``),
        each with its IDF."""
        documents = max(1, self.count())
        weights: dict[str, float] = {}
        for word in query.words:
            for form in self.forms(word):
                for term in analyzer().analyze(form):
                    frequency = self._searcher.doc_freq(TEXT, term)
                    weights[term] = idf(documents, frequency)
        for short in query.acronyms:
            frequency = self._searcher.doc_freq(ACRONYMS, short.lower())
            weights[f"{ACRONYMS}:{short.lower()}"] = idf(documents, frequency)
        return weights

    def pairs(self, query: ParsedQuery) -> list[tuple[str, str]]:
        """The query's neighbouring words (stopwords left out), as stems: "the Korean War"
        gives ("korean", "war"), which :meth:`holding` looks for near each other."""
        stems = [terms[0] for word in query.words if (terms := analyzer().analyze(word))]
        return list(dict.fromkeys(itertools.pairwise(stems)))

    def holding(
        self, terms: Iterable[str], rows: Iterable[int], pairs: Iterable[tuple[str, str]] = ()
    ) -> dict[str | tuple[str, str], set[int]]:
        """Which of ``rows`` hold each of ``terms`` (as :meth:`term_weights` names them),
        and each of ``pairs`` within :data:`NEAR` words of each other (Tantivy's sloppy
        phrase: in either order), in one search: clause i scores a constant 2 ** (i + 1),
        so a row's score, less the 1 its row match adds, spells out which it holds."""
        wanted = sorted(set(rows))
        query = self._tantivy.Query
        named: dict[str | tuple[str, str], Any] = {}
        for name in dict.fromkeys(terms):
            field, _, value = (
                name.rpartition(":") if name.startswith(ACRONYMS) else (TEXT, "", name)
            )
            named[name] = query.term_query(self._index.schema, field, value)
        for pair in dict.fromkeys(pairs):
            named[pair] = query.phrase_query(self._index.schema, TEXT, list(pair), NEAR)
        names = list(named)[:MAX_TERM_BITS]
        held: dict[str | tuple[str, str], set[int]] = {name: set() for name in names}
        if not wanted or not names:
            return held
        occur = self._tantivy.Occur
        clauses = [self._in_rows(wanted)]
        for bit, name in enumerate(names, start=1):
            clauses.append((occur.Should, query.const_score_query(named[name], float(2**bit))))
        for row, score in self._search(query.boolean_query(clauses), len(wanted)):
            bits = round(score) - 1
            for bit, name in enumerate(names, start=1):
                if bits >> bit & 1:
                    held[name].add(row)
        return held

    def matching(self, phrases: Iterable[str]) -> set[int]:
        """Rows containing every phrase."""
        clauses = [(self._tantivy.Occur.Must, self._any_form(p)) for p in phrases]
        if not clauses:
            return set()
        query = self._tantivy.Query.boolean_query(clauses)
        return {row for row, _ in self._search(query, self.count())}


def _contains(words: tuple[str, ...], part: tuple[str, ...]) -> bool:
    n = len(part)
    return n > 0 and any(words[i : i + n] == part for i in range(len(words) - n + 1))
