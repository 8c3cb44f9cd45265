"""The records of an index generation: manifest, chunk rows and the CURRENT pointer.

Plain data with strict parsers: anything malformed becomes :class:`IndexCorruptError`
(or :class:`IndexMismatchError` for another format), never another exception, so that a
damaged file is always refused cleanly (tests/test_properties.py fuzzes these parsers).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from diplosearch.chunks import Chunk
from diplosearch.errors import IndexCorruptError, IndexMismatchError

FORMAT_VERSION = 9
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.faiss"
SENTENCES = "sentences.npy"
#: Row j: the unit mean of the chunk vectors of the j-th document (manifest order).
DOCUMENTS = "documents.npy"
#: Folder of the Tantivy BM25 index; its files are listed in the manifest as
#: ``lexical/<name>`` (their names are Tantivy's segment ids).
LEXICAL = "lexical"
#: Row i: byte offset of chunk row i in CHUNKS and its first row in SENTENCES; one more
#: row holds the totals. A query reads the rows it shows, never the whole table.
ROWS = "rows.npy"
DATA_FILES = (VECTORS, CHUNKS, SENTENCES, ROWS, DOCUMENTS)
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_LEXICAL_FILE_RE = re.compile(rf"{LEXICAL}/(?!\.\.?\Z)[A-Za-z0-9._-]+")


#: A file or folder name with no path in it (no "/", no "..", not hidden).
_PLAIN_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def plain_name(name: str) -> bool:
    """A file or folder name with no path in it, not hidden: what a manifest may list."""
    return _PLAIN_NAME_RE.fullmatch(name) is not None


def _check_files(files: dict[str, FileEntry]) -> None:
    """The fixed data files, the lexical index's meta.json and segment files (plain names,
    no path tricks), each with a SHA-256."""
    lexical = {name for name in files if _LEXICAL_FILE_RE.fullmatch(name)}
    if set(files) - lexical != set(DATA_FILES) or f"{LEXICAL}/meta.json" not in lexical:
        raise ValueError(f"files lists {sorted(files)}, not {sorted(DATA_FILES)} + {LEXICAL}/")
    if not all(_SHA_RE.fullmatch(f.sha256) for f in files.values()):
        raise ValueError("a file's sha256 is malformed")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """What the manifest remembers of one document."""

    sha256: str
    size: int
    title: str | None
    date: str | None
    chunks: int
    #: (size, mtime_ns, ctime_ns, inode) at hashing; a file with the same stamp is not
    #: re-read (see corpus.scan). Not part of equality: it describes the disk, not the text.
    stamp: tuple[int, int, int, int] | None = field(default=None, compare=False)
    #: How the file was read (see ingest/formats): text, markdown, html, pdf, docx.
    format: str = "text"
    #: Its language (ISO 639-1, see ingest/language.py), ``None`` when unknown.
    language: str | None = None
    #: A web page's canonical URL, when it names one.
    url: str | None = None


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    model: str
    model_fingerprint: str
    dimension: int
    chunker_version: str
    encoder: str
    created: str
    sources: dict[str, SourceEntry]
    chunks: int
    #: Passages with no date (their document's, or their report's in a digest): what a
    #: date filter leaves out, said to the user.
    undated: int = 0
    #: Every speaker spelling in the chunk table -> the one name used for that person.
    speakers: dict[str, str] = field(default_factory=dict)
    #: SHA-256 and size of every data file of the generation.
    files: dict[str, FileEntry] = field(default_factory=dict)
    #: The FAISS index built ("flat" or "hnsw", see ann.py) and what was asked for.
    index_type: str = "flat"
    index_request: str = "auto"
    #: Acronyms the corpus defines ("EEU" -> "Eurasian Economic Union"), see acronyms.py.
    acronyms: dict[str, str] = field(default_factory=dict)
    #: SHA-256 and size of every file of the query encoder (``encoders/<encoder>/``): the
    #: answer depends on them as much as on the vectors.
    encoder_files: dict[str, FileEntry] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    generation: str = field(default="", compare=False)

    def count_by(self, column: str) -> dict[str, int]:
        """Documents per value of a source column (``language``, ``format``), most first;
        an unknown language counts as ``unknown``."""
        counts: dict[str, int] = {}
        for entry in self.sources.values():
            value = getattr(entry, column) or "unknown"
            counts[value] = counts.get(value, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def to_json(self) -> str:
        """Compact JSON, the per-source table by column: at 64k documents that parses in
        half the time of a dict per document, on every new query process."""
        data = asdict(self)
        data.pop("generation")
        names = sorted(self.sources)
        entries = [self.sources[name] for name in names]
        data["sources"] = {"name": names} | {
            column: [getattr(e, column) for e in entries] for column in _SOURCE_COLUMNS
        }
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, generation: str) -> Manifest:
        """Parse and type-check; anything malformed is an :class:`IndexCorruptError`."""
        try:
            data = json.loads(text)
            version = data["format_version"]
            if version != FORMAT_VERSION:
                raise IndexMismatchError(
                    f"index format {version} is not the supported format {FORMAT_VERSION}"
                )
            columns = data["sources"]
            names = columns["name"]
            table = [names] + [columns[c] for c in _SOURCE_COLUMNS]
            if not all(isinstance(c, list) and len(c) == len(names) for c in table):
                raise ValueError("the source table's columns differ in length")
            sources = {
                str(name): SourceEntry(
                    _sha(sha),
                    int(size),
                    _optional_str(title),
                    _optional_str(date),
                    int(chunks),
                    None if stamp is None else _stamp(stamp),
                    _format(form),
                    _optional_str(language),
                    _optional_str(url),
                )
                for name, sha, size, title, date, chunks, stamp, form, language, url in zip(
                    *table, strict=True
                )
            }
            files = _file_entries(data["files"])
            encoder_files = _file_entries(data["encoder_files"])
            _check_files(files)
            names = [str(data["encoder"]), *encoder_files]
            if not encoder_files or not all(plain_name(n) for n in names):
                raise ValueError(f"the query encoder's files are not plain names: {names}")
            if not all(_SHA_RE.fullmatch(f.sha256) for f in encoder_files.values()):
                raise ValueError("an encoder file's sha256 is malformed")
            manifest = cls(
                model=str(data["model"]),
                model_fingerprint=str(data["model_fingerprint"]),
                dimension=int(data["dimension"]),
                chunker_version=str(data["chunker_version"]),
                encoder=str(data["encoder"]),
                created=str(data["created"]),
                sources=sources,
                chunks=int(data["chunks"]),
                undated=int(data["undated"]),
                speakers={str(k): str(v) for k, v in data["speakers"].items()},
                files=files,
                index_type=str(data["index_type"]),
                index_request=str(data["index_request"]),
                acronyms={str(k): str(v) for k, v in data["acronyms"].items()},
                encoder_files=encoder_files,
                format_version=int(version),
                generation=generation,
            )
            if manifest.dimension <= 0 or not 0 <= manifest.undated <= manifest.chunks:
                raise ValueError("dimension and counts must be positive")
            return manifest
        except IndexMismatchError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise IndexCorruptError(f"unreadable manifest in {generation}: {exc!r}") from exc


#: The manifest's per-source table: a column per SourceEntry field, then "name".
_SOURCE_COLUMNS = (
    "sha256", "size", "title", "date", "chunks", "stamp", "format", "language", "url"
)
#: The formats a source may have been read as (ingest/formats.FORMATS' values).
_FORMATS = ("text", "markdown", "html", "pdf", "docx")


def _format(value: Any) -> str:
    if value not in _FORMATS:
        raise ValueError(f"unknown document format {value!r}")
    return str(value)


def _file_entries(data: Any) -> dict[str, FileEntry]:
    return {
        str(name): FileEntry(sha256=_sha(entry["sha256"]), size=int(entry["size"]))
        for name, entry in data.items()
    }


def _sha(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a SHA-256, got {type(value).__name__}")
    return value


def _stamp(value: Any) -> tuple[int, int, int, int]:
    size, mtime, ctime, inode = value
    return (int(size), int(mtime), int(ctime), int(inode))


def _optional_str(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"expected a string or null, got {type(value).__name__}")
    return value


def chunk_to_row(chunk: Chunk) -> dict[str, Any]:
    return {
        "id": chunk.id,
        "source": chunk.source,
        "paragraph": chunk.paragraph,
        "part": chunk.part,
        "parts": chunk.parts,
        "lines": [chunk.line_start, chunk.line_end],
        "pages": list(chunk.pages) if chunk.pages else None,
        "section": chunk.section,
        "date": chunk.date,
        "speakers": list(chunk.speakers),
        "sentences": [list(span) for span in chunk.sentences],
        "text": chunk.text,
    }


def row_to_chunk(row: dict[str, Any]) -> Chunk:
    start, end = row["lines"]
    pages = row["pages"]
    return Chunk(
        source=str(row["source"]),
        paragraph=int(row["paragraph"]),
        part=int(row["part"]),
        parts=int(row["parts"]),
        line_start=int(start),
        line_end=int(end),
        section=_optional_str(row["section"]),
        date=_optional_str(row["date"]),
        text=str(row["text"]),
        speakers=tuple(str(s) for s in row["speakers"]),
        sentences=tuple((int(a), int(b)) for a, b in row["sentences"]),
        pages=None if pages is None else (int(pages[0]), int(pages[1])),
    )


@dataclass(frozen=True)
class Pointer:
    """What ``CURRENT`` says: the live generation and the last good one before it."""

    live: tuple[str, str]
    previous: tuple[str, str] | None

    def to_text(self) -> str:
        """One line per generation, then a checksum of those lines (as Lucene's
        segments_N footer), so a truncated or altered pointer is always told apart."""
        lines = [self.live] + ([self.previous] if self.previous else [])
        body = "".join(f"{name} {sha}\n" for name, sha in lines)
        return f"{body}sum {_sha256(body.encode())}\n"
