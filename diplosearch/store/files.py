"""The index folder's names, and the careful file operations its reader and writer share:
writes that are flushed, fsynced and length-checked, hashes, stat stamps."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from diplosearch.ingest.corpus import stat_stamp

CACHE = "embeddings.sqlite"
#: Extracted text of PDFs, web pages and Word files, by file hash (see store/cache.py).
EXTRACTIONS = "extractions.sqlite"
#: Stat stamps of index files whose checksums passed (see ``check_file``).
VERIFIED = ".verified.json"
#: Stat stamps of corpus files skipped for their bytes (see corpus.scan).
SKIPPED = ".skipped.json"
ENCODERS = "encoders"
LOCK = ".lock"
LOCK_OWNER = ".lock.owner"
#: Held by an explicit build while it waits for LOCK (see IndexStore.writer_lock).
LOCK_INTENT = ".lock.intent"
DAMAGED = "damaged-"
GENERATION_RE = re.compile(r"^gen-(\d{6,})\Z")
POINTER_LINE_RE = re.compile(r"^(gen-\d{6,}) ([0-9a-f]{64})\Z")
#: Fault injection for the crash tests: ``DIPLOSEARCH_CRASH_AT=<step>`` kills the process
#: with SIGKILL when a build reaches that step of its commit.
CRASH_ENV = "DIPLOSEARCH_CRASH_AT"
COMMIT_STEPS = ("files-written", "generation-renamed", "pointer-written", "pointer-replaced")


def step(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stat_stamps(folder: Path, names: Iterable[str]) -> list[Any]:
    """What any write to a generation's files would move: a kept generation is reused only
    while these hold, so a file changed under a long-running process is checked again."""
    try:
        return [stat_stamp((folder / name).stat()) for name in names]
    except OSError:
        return [None]


def is_dir(path: Path) -> bool:
    """``Path.is_dir`` that reports an unreadable path as not a folder (Python's raises
    for EACCES or EIO; here the reading that follows gives the typed error)."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def verified(info: os.stat_result, sha256: str) -> list[Any]:
    """A file's entry in ``.verified.json``: its stat stamp when ``sha256`` was checked."""
    return [*stat_stamp(info), sha256]


def fsync(path: Path) -> None:
    """A folder's entries, or a file another library wrote (Tantivy's), onto the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    """Write, flush and fsync; a short write (a full disk) raises instead of passing."""
    with path.open("wb") as handle:
        written = handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if written != len(data) or path.stat().st_size != len(data):
        raise OSError(f"short write: {path.stat().st_size} of {len(data)} bytes")


def number(entry: str) -> int:
    """A folder's generation number, set-aside ones included, so numbers only grow."""
    match = re.match(r"^gen-(\d{6,})(?:-|$)", entry.removeprefix(DAMAGED))
    return int(match.group(1)) if match else 0
