"""Typed errors raised by the library; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

import errno


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
    def during_build(cls, root: object, exc: Exception) -> DiplosearchError:
        """The error for ``exc`` met while writing in ``root``: an :class:`AccessError`
        when it is a matter of permissions, else this one."""
        reason = getattr(exc, "strerror", None) or exc
        where = getattr(exc, "filename", None) or root
        if denied(exc):
            return AccessError(
                f"no permission to write the index: {reason} ({where}); the previous index "
                "is unchanged"
            )
        return cls(
            f"could not write the index: {reason} ({where}); the previous index is unchanged"
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


class AccessError(DiplosearchError):
    """Permission denied, or a read-only file system. Not damage: nothing is set aside or
    rebuilt, and only a change of user, permissions or mount mends it."""

    exit_code = 11


#: errno values that say "not allowed", as opposed to "broken".
ACCESS_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
#: The same, as the libraries that carry no errno say it: Tantivy (Rust's io::Error in a
#: ValueError), FAISS (a RuntimeError), SQLite (SQLITE_READONLY).
ACCESS_TEXTS = ("PermissionDenied", "Permission denied", "Read-only file", "readonly database")


def denied(exc: BaseException) -> bool:
    """Whether ``exc`` (or the error it was raised from) is a permission problem."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in ACCESS_ERRNOS:
            return True
        text = str(exc)
        if any(s in text for s in ACCESS_TEXTS):
            return True  # Tantivy's I/O errors arrive as text in a ValueError
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def unreadable(path: object, exc: OSError, *, missing: bool = False) -> DiplosearchError:
    """The error for ``exc`` met while reading an index file at ``path`` (``missing``: a
    file the index needs): an :class:`AccessError` for permissions (a shared index is not
    damaged because this user may not read it), else :class:`IndexCorruptError`."""
    reason = exc.strerror or exc
    if denied(exc):
        return AccessError(f"no permission to read {path} ({reason})")
    if missing:
        return IndexCorruptError(f"{path} is missing ({reason})")
    return IndexCorruptError(f"cannot read {path} ({reason})")
