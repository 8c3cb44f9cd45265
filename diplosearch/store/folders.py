"""Temporary folders that become part of an index, created as the user's umask says.

``tempfile.mkdtemp`` creates its folder 0700, whatever the umask: right for a secret,
wrong for a generation or an encoder that is renamed into a shared index, where another
user's search would find it unreadable and take a healthy index for a damaged one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def umask() -> int:
    """The process's umask: from ``/proc`` where Linux has it, else by setting it and
    setting it back (POSIX's only way, which another thread could see for an instant)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def staging_folder(prefix: str, parent: Path) -> Path:
    """A new, uniquely named folder in ``parent``, with the permissions a folder made by
    ``mkdir`` would have."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(folder, 0o777 & ~umask())
    return folder


def follow_umask(folder: Path) -> None:
    """Give the files in ``folder`` the permissions the umask gives new files: Tantivy
    writes its ``meta.json`` 0600, as its atomic writes go through a temporary file."""
    mask = umask()
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o666 & ~mask)
