"""Typed errors raised by the library; only the CLI turns them into messages and exit codes."""

from __future__ import annotations


class DiplosearchError(Exception):
    """Base class. ``exit_code`` lets the CLI map each kind of failure to a stable status."""

    exit_code = 1


class CorpusError(DiplosearchError):
    """The corpus folder is missing, not a folder, or holds no readable documents."""

    exit_code = 3


class IndexMissingError(DiplosearchError):
    """No index has been built in the index folder yet."""

    exit_code = 4


class IndexCorruptError(DiplosearchError):
    """An index file is unreadable or its parts disagree (counts, dimension, format)."""

    exit_code = 5


class IndexMismatchError(DiplosearchError):
    """The index was built with another model, dimension, format or chunker."""

    exit_code = 6


class IndexWriteError(DiplosearchError):
    """A build could not write its new generation (full disk, I/O error); the previous
    generation is untouched."""

    exit_code = 7

    @classmethod
    def during_build(cls, root: object, exc: Exception) -> IndexWriteError:
        reason = getattr(exc, "strerror", None) or exc
        return cls(
            f"could not write the index in {root}: {reason}; the previous index is unchanged"
        )


class ModelError(DiplosearchError):
    """The embedding model or its exported query encoder cannot be loaded."""

    exit_code = 8


class IndexLockedError(DiplosearchError):
    """Another process is writing the index."""

    exit_code = 9


class JudgementsError(DiplosearchError):
    """A relevance-judgement file for ``eval`` is missing or malformed."""

    exit_code = 10


class QueryError(DiplosearchError):
    """The query cannot be answered as given (empty, too long, k out of range)."""

    exit_code = 2
