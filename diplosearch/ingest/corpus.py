"""Find the documents of a corpus folder, fingerprint them, and decode them safely.

The walk stays inside the corpus folder and never blocks or crashes on what it meets:
symbolic links that loop or lead outside, FIFOs and device files (opening a FIFO would
hang), unreadable files, folders named like documents, binary files. Each is skipped with
one warning. A document is read once: the bytes hashed are the bytes decoded
(:meth:`SourceFile.read_bytes`). Decoding handles byte-order marks, UTF-16/32, invalid UTF-8
(replaced, with a warning) and stray NUL bytes; line endings are left to the chunker,
which numbers lines as an editor does.
"""

from __future__ import annotations

import codecs
import errno
import functools
import hashlib
import itertools
import os
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

from diplosearch.errors import CorpusError
from diplosearch.ingest.formats import BINARY_FORMATS, FORMATS, MAX_REASON, format_of, sniff


class KnownFile(Protocol):
    """What a previous scan recorded of a file (the manifest's SourceEntry)."""

    sha256: str
    stamp: tuple[int, int, int, int] | None


#: File endings treated as documents; every other file in the folder is named in a warning.
DOCUMENT_SUFFIXES = tuple(FORMATS)
#: Control bytes that do not occur in text (tab, newlines, form feed and escape do).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
#: How much of a file decides whether it is binary.
_SNIFF = 8192
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class SourceFile(NamedTuple):
    """One document: its path relative to the corpus (the citation) and its content hash.

    A named tuple, not a frozen dataclass: a query checks tens of thousands of these, and
    a tuple is built three times faster."""

    relpath: str
    #: Where the file is (a str, not a Path: cheaper across tens of thousands of files).
    location: str
    sha256: str
    size: int
    #: (size, mtime_ns, ctime_ns, inode) when the hash was taken, or ``None`` if the file
    #: changed too recently to trust (git's "racily clean" entries): then it is hashed again.
    stamp: tuple[int, int, int, int] | None = None
    #: The file's inode when the scan saw it: reading checks it is still that file.
    inode: int | None = None

    def read_bytes(self) -> tuple[bytes, list[str], SourceFile]:
        """The document's bytes, a warning if it changed since the scan, and the source
        as read.

        Read once, as git does: the file is opened without following a link, checked to
        be the regular file the scan saw, and the bytes hashed are the bytes extracted,
        so the hash recorded for a document is the hash of the text indexed. A
        file rewritten since the scan comes back with its new hash (and no stamp, so
        that it is checked again); one replaced by another file or a link raises
        :class:`SourceChanged`."""
        try:
            data = read_regular(self.location, self.inode)
        except SourceChanged as exc:
            raise SourceChanged(f"{self.relpath}: {exc}") from exc
        except OSError as exc:
            raise CorpusError(f"cannot read {self.relpath}: {exc.strerror}") from exc
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 == self.sha256:
            return data, [], self
        changed = self._replace(sha256=sha256, size=len(data), stamp=None)
        return data, [f"{self.relpath} changed while it was read; indexed as read"], changed


class SourceChanged(CorpusError):
    """A document was replaced (by another file, a link or something not a regular file)
    between the scan and the read: skipped now, seen afresh by the next scan."""


def open_regular(location: str, inode: int | None = None) -> tuple[BinaryIO, os.stat_result]:
    """The regular file at ``location``, open for reading, and its ``fstat``: opened
    without following a link at its last step and without blocking (a FIFO put in its
    place opens, and is refused), and, if ``inode`` is given, only if it is still that
    file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(location, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SourceChanged("it is now a symbolic link") from exc
        raise
    handle = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (inode is not None and info.st_ino != inode):
        handle.close()
        raise SourceChanged(
            "it was replaced by another file" if stat.S_ISREG(info.st_mode)
            else "it is no longer a regular file"
        )  # fmt: skip
    return handle, info


def read_regular(location: str, inode: int | None = None) -> bytes:
    """All the bytes of :func:`open_regular`'s file."""
    handle, _ = open_regular(location, inode)
    with handle:
        return handle.read()


@dataclass
class Scan:
    sources: dict[str, SourceFile] = field(default_factory=dict)
    #: One line per thing skipped, for the user.
    warnings: list[str] = field(default_factory=list)
    #: Files skipped for what their bytes are (binary), by stat stamp and reason: the
    #: next scan skips an unchanged one with one stat, without opening it.
    skipped: dict[str, Skipped] = field(default_factory=dict)


#: A skipped file's stat stamp (size, mtime, ctime, inode) and why it was skipped.
Skipped = tuple[int, int, int, int, str]


def _encoding(data: bytes) -> str | None:
    """The encoding announced by a byte-order mark, or guessed for BOM-less UTF-16 (ASCII
    text in UTF-16 has a NUL in every other byte), else ``None`` (UTF-8)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    head = data[:_SNIFF]
    if len(head) >= 4 and len(head) % 2 == 0:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.8 * len(odd) and even.count(0) < 0.1 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.8 * len(even) and odd.count(0) < 0.1 * len(odd):
            return "utf-16-be"
    return None


def looks_binary(data: bytes) -> bool:
    """Binary: not UTF-16/32, and more than 1% NUL bytes (and more than 4) or 10% other
    control bytes at the start. A text file with a stray NUL is text (the NULs are
    dropped, with a warning)."""
    if _encoding(data) is not None:
        return False
    head = data[:_SNIFF]
    if not head:
        return False
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return head.count(0) > max(4, 0.01 * len(head)) or controls > 0.10 * len(head)


def decode(data: bytes, name: str) -> tuple[str, list[str]]:
    """Text from bytes, never failing: invalid sequences become U+FFFD with a warning."""
    warnings: list[str] = []
    encoding = _encoding(data) or "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        text = data.decode(encoding, errors="replace")
        warnings.append(
            f"{name}: invalid {encoding.upper()} at byte {exc.start}; "
            "undecodable bytes shown as \N{REPLACEMENT CHARACTER}"
        )
    if "\x00" in text:
        warnings.append(f"{name}: {text.count(chr(0))} NUL bytes removed")
        text = text.replace("\x00", "")
    return text, warnings


def _inside(root: Path, path: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def readable_name(name: str) -> str:
    """``name`` as text that can be shown, stored and cited: a name that is not valid
    UTF-8 (an archive from Windows or an older Russian system: ``caf\\xe9.txt``) comes
    from the OS with its bytes escaped as surrogates, which no encoder accepts; its
    undecodable bytes are written as ``\\xe9`` instead. The file is still opened by its
    real name."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


def _walk(root: Path, warnings: list[str]) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, path, stat) of every candidate document, in a stable order.

    ``os.scandir`` gives each entry's type without a system call and its stat with one,
    so an unchanged corpus of tens of thousands of files is walked in a fraction of a
    second."""
    real_root = root.resolve()

    # Depth first, each folder's documents before its subfolders, with a stack of its
    # own: a corpus nested a thousand folders deep must not exhaust Python's recursion.
    stack = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            warnings.append(f"skipping {prefix or exc.filename}: {exc.strerror}")
            continue
        folders = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            shown = readable_name(name)
            rel = f"{prefix}{shown}"
            link = entry.is_symlink()
            try:
                folder_like = entry.is_dir()  # follows links, as os.walk sorts them
            except OSError:  # a link loop: reported below, as a file
                folder_like = False
            if folder_like:
                if link:
                    warnings.append(f"skipping {rel}: a linked folder (links are not followed)")
                elif name.lower().endswith(DOCUMENT_SUFFIXES):
                    warnings.append(f"skipping {rel}: a folder named like a document")
                else:
                    folders.append(entry)
                continue
            if not name.lower().endswith(DOCUMENT_SUFFIXES):
                # Nothing is left out without a word: a saved web page or a PDF in the
                # folder is named, so its absence from the answers is never a surprise.
                suffix = os.path.splitext(shown)[1].lower()
                what = f"format {suffix}" if suffix else "file without an extension"
                warnings.append(f"skipping {rel}: unsupported {what} ({SUPPORTED})")
                continue
            if shown != name:
                warnings.append(f"{rel}: the file name is not valid UTF-8; cited as shown here")
            path = entry.path  # a str: building a Path per file is half the walk's time
            if link:
                try:
                    target = Path(path).resolve(strict=True)
                except (OSError, RuntimeError) as exc:
                    reason = (
                        "a symbolic link loop" if "loop" in str(exc).lower() else "a broken link"
                    )
                    warnings.append(f"skipping {rel}: {reason}")
                    continue
                if not _inside(real_root, target):
                    warnings.append(f"skipping {rel}: a link to a file outside the corpus")
                    continue
                path = str(target)  # read where it leads, never through the link again
            try:
                info = entry.stat()
            except OSError as exc:
                warnings.append(f"skipping {rel}: {exc.strerror}")
                continue
            mode = info.st_mode
            if not stat.S_ISREG(mode):
                kind = (
                    "a FIFO"
                    if stat.S_ISFIFO(mode)
                    else "a device file"
                    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a socket"
                    if stat.S_ISSOCK(mode)
                    else "not a regular file"
                )
                warnings.append(f"skipping {rel}: {kind}")
                continue
            yield rel, path, info
        stack.extend(
            (entry.path, f"{prefix}{readable_name(entry.name)}/") for entry in reversed(folders)
        )


#: What the walk says about a file that is not a document.
SUPPORTED = f"documents are {', '.join(DOCUMENT_SUFFIXES[:-1])} and {DOCUMENT_SUFFIXES[-1]} files"
#: Why a binary file is skipped.
BINARY = "a binary file"
#: How the reasons a file is skipped for its content begin: a binary file, or one that
#: cannot be read as its format (formats.ExtractionError's messages).
SKIP_REASONS = (
    BINARY, "the PDF ", "not a ", "the Word ", "no main text ", "unreadable HTML",
    "cannot be read as ",
)


def known_reason(reason: object) -> bool:
    """Whether ``reason`` is one a scan remembers a skipped file for: the note holding
    them is a file, and its reasons are shown to the user."""
    return (
        isinstance(reason, str)
        and reason.startswith(SKIP_REASONS)
        and len(reason) <= MAX_REASON
        and reason.isprintable()
    )
#: A file modified this close to its hashing may change again within one timestamp tick.
_RACY_NS = 2_000_000_000


def stat_stamp(info: os.stat_result) -> tuple[int, int, int, int]:
    """What changes whenever a file's content may have: any write moves the ctime, even
    one that puts the mtime back (as git's index compares)."""
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


def scan(
    root: Path,
    known: Mapping[str, KnownFile] | None = None,
    skipped: Mapping[str, Skipped] | None = None,
) -> Scan:
    """Fingerprint every document under ``root``; the hashes are what stale detection
    compares. A file whose stat stamp equals its ``known`` one keeps its known
    hash without being read, so a query over a large unchanged corpus costs stats only;
    one whose stamp equals its ``skipped`` one is skipped again, unread (a 3 GB binary
    file named ``.txt`` costs one stat)."""
    try:
        if not stat.S_ISDIR(os.stat(root).st_mode):
            raise CorpusError(f"corpus path is not a folder: {root}")
    except FileNotFoundError as exc:
        raise CorpusError(f"corpus folder not found: {root}") from exc
    except OSError as exc:
        raise CorpusError(f"cannot read the corpus folder {root}: {exc.strerror}") from exc
    result = Scan()
    known = known or {}
    skipped = skipped or {}
    sources = result.sources
    for relpath, location, info in _walk(root, result.warnings):
        entry = known.get(relpath)
        if entry is not None:
            stamp = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
            if stamp == entry.stamp:  # as stat_stamp, inline: this loop is the query's cost
                sources[relpath] = SourceFile(
                    relpath, location, entry.sha256, stamp[0], stamp, info.st_ino
                )
                continue
        passed = skipped.get(relpath)
        if passed is not None and passed[:4] == stat_stamp(info):
            result.warnings.append(f"skipping {relpath}: {passed[4]}")
            result.skipped[relpath] = passed
            continue
        started = time.time_ns()
        digest = hashlib.sha256()
        size = 0
        try:
            handle, info = open_regular(location)
            with handle:
                first = handle.read(1 << 20)
                # Before hashing a large binary file; a PDF or Word file is binary by
                # nature, and so is one of those named .txt (read as what it is).
                if (
                    format_of(relpath) not in BINARY_FORMATS
                    and sniff(first[:_SNIFF]) is None
                    and looks_binary(first[:_SNIFF])
                ):
                    result.warnings.append(f"skipping {relpath}: {BINARY}")
                    if max(info.st_mtime_ns, info.st_ctime_ns) < started - _RACY_NS:
                        result.skipped[relpath] = (*stat_stamp(info), BINARY)
                    continue
                rest = iter(functools.partial(handle.read, 1 << 20), b"")
                for block in itertools.chain((first,), rest):
                    digest.update(block)
                    size += len(block)
        except SourceChanged as exc:
            result.warnings.append(f"skipping {relpath}: {exc}")
            continue
        except OSError as exc:
            result.warnings.append(f"skipping {relpath}: {exc.strerror}")
            continue
        newest = max(info.st_mtime_ns, info.st_ctime_ns)
        stable = size == info.st_size and newest < started - _RACY_NS
        result.sources[relpath] = SourceFile(
            relpath=relpath,
            location=location,
            sha256=digest.hexdigest(),
            size=size,
            stamp=stat_stamp(info) if stable else None,
            inode=info.st_ino,
        )
    return result
