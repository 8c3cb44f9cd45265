"""Fault injection for the file system, in the spirit of SQLite's I/O-error loops.

A run of the real CLI (in this process, with the test model) is first made with every
file-system call counted by its call site: the line of diplosearch that made it, directly
or through the standard library (``Path.read_text`` in store/reader.py counts as that
line of store/reader.py). Then, for each call site in turn and for each of EACCES,
ENOSPC, EIO, EROFS and ENOENT, the run is repeated from the same starting state with the
first call at that site failing with that error. Every run must end with a one-line typed
error or a correct answer; afterwards the index must pass ``verify`` and a run without
faults must equal a build from scratch.

Calls made by Tantivy (Rust), FAISS's writer (C++) and SQLite (C) inside their own code
are out of reach of this harness: those are covered by the checksums every load checks,
the full-disk tests and the kill -9 tests (tests/test_robustness.py).

``python -m tests.faults`` runs every scenario and prints the counts docs/robustness.md
reports.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import sqlite3
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

import diplosearch
from diplosearch.cli import cli
from diplosearch.store import IndexStore

ERRNOS = (errno.EACCES, errno.ENOSPC, errno.EIO, errno.EROFS, errno.ENOENT)
#: The errors that say "not allowed": exit 11, never 5.
ACCESS = (errno.EACCES, errno.EROFS)
PACKAGE = Path(diplosearch.__file__).resolve().parent
#: The functions of ``os`` that touch the file system and that diplosearch, pathlib,
#: shutil, numpy and filelock call.
OS_CALLS = (
    "open", "stat", "lstat", "fstat", "listdir", "scandir", "mkdir", "rename", "replace",
    "unlink", "rmdir", "fsync", "chmod", "read", "write", "symlink", "readlink", "utime",
)  # fmt: skip
#: Exit codes a typed error may end with (README, "Exit codes").
ERROR_CODES = frozenset({3, 4, 5, 6, 7, 8, 9, 11})


def _os_error(code: int, name: str, args: tuple[Any, ...]) -> Exception:
    target = args[0] if args and isinstance(args[0], (str, bytes, os.PathLike)) else None
    return OSError(code, os.strerror(code), target)


def _sqlite_error(code: int, name: str, args: tuple[Any, ...]) -> Exception:
    text = {
        errno.ENOSPC: "database or disk is full",
        errno.EIO: "disk I/O error",
        errno.EROFS: "attempt to write a readonly database",
    }.get(code, "unable to open database file")
    return sqlite3.OperationalError(text)


def _faiss_error(code: int, name: str, args: tuple[Any, ...]) -> Exception:
    return RuntimeError(f"Error: could not open {args[0]} for reading: {os.strerror(code)}")


class Injector:
    """Counts file-system calls by call site and fails the first call at one site."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.target: tuple[str, int] | None = None
        self.fired = False
        self._lock = threading.Lock()

    @staticmethod
    def _site() -> str | None:
        """The line of diplosearch on whose behalf the call is made; None for imports and
        for calls no diplosearch code made (click's, pytest's)."""
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if "importlib" in name:
                return None
            if name.startswith(str(PACKAGE)):
                return f"{Path(name).relative_to(PACKAGE.parent).as_posix()}:{frame.f_lineno}"
            frame = frame.f_back  # type: ignore[assignment]
        return None

    def wrap(self, original: Callable[..., Any], name: str, error: Callable[..., Exception]) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            site = self._site()
            if site is not None:
                with self._lock:
                    self.calls[f"{site} {name}"] += 1
                    fire = (
                        not self.fired
                        and self.target is not None
                        and self.target[0] == f"{site} {name}"
                    )
                    self.fired = self.fired or fire
                if fire:
                    assert self.target is not None
                    raise error(self.target[1], name, args)
            return original(*args, **kwargs)

        return call

    @contextmanager
    def installed(self) -> Iterator[Injector]:
        import faiss

        patches: list[tuple[Any, str, Any]] = [(os, n, _os_error) for n in OS_CALLS]
        patches += [(builtins, "open", _os_error), (io, "open", _os_error)]
        patches += [(sqlite3, "connect", _sqlite_error), (faiss, "read_index", _faiss_error)]
        saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
        try:
            for owner, name, error in patches:
                setattr(owner, name, self.wrap(getattr(owner, name), name, error))
            yield self
        finally:
            for owner, name, original in saved:
                setattr(owner, name, original)


@dataclass
class Scenario:
    """A starting state (corpus and index folders) and a command to run over it."""

    name: str
    args: tuple[str, ...]
    #: Folder holding ``seeds/`` and ``index/`` to start each run from.
    base: Path
    #: The answer a build from scratch of the corpus gives (search results), and the
    #: answer of the index of the corpus's first version (a search that could not refresh,
    #: or whose live generation failed a check, may give it, with a warning); None for
    #: commands that print no results.
    expected: list[Any] | None
    previous: list[Any] | None
    #: The chunk table and manifest sources a from-scratch build writes.
    scratch_chunks: bytes
    scratch_sources: dict[str, Any]
    outcomes: Counter[str] = field(default_factory=Counter)


def answers(output: str) -> list[Any]:
    """The citations of a ``search --json`` output, in order."""
    return [(r["source"], r["paragraph"]) for r in json.loads(output)["results"]]


def run(folder: Path, args: tuple[str, ...]) -> Any:
    seeds, index = folder / "seeds", folder / "index"
    return CliRunner().invoke(
        cli, [*args, "--seeds", str(seeds), "--index", str(index)], catch_exceptions=True
    )


def live(index: Path) -> tuple[bytes, dict[str, Any]]:
    store = IndexStore(index)
    manifest = store.read_manifest()
    chunks = (index / manifest.generation / "chunks.jsonl").read_bytes()
    return chunks, {name: entry.sha256 for name, entry in manifest.sources.items()}


def check_case(scenario: Scenario, work: Path, site: str, code: int, injector: Injector) -> str:
    """One run with the first call at ``site`` failing with ``code``; returns the outcome
    ("error N", "answer", "fallback", "not reached"); raises AssertionError on a defect."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(scenario.base, work, symlinks=True)
    injector.target, injector.fired = (site, code), False
    try:
        result = run(work, scenario.args)
    finally:
        injector.target = None
    label = f"{scenario.name}: {site} {errno.errorcode[code]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{label}: traceback {result.exception!r}\n"
        + "".join(traceback.format_exception(*result.exc_info))
    )
    assert "Traceback" not in result.output, f"{label}: {result.output}"
    if result.exit_code:
        lines = result.stderr.strip().splitlines()
        errors = [line for line in lines if line.startswith("diplosearch: error: ")]
        assert result.exit_code in ERROR_CODES, f"{label}: exit {result.exit_code}"
        assert errors == lines[-1:], f"{label}: not one error line: {result.stderr!r}"
        # A permission problem is never called damage, nor damage a permission problem.
        assert result.exit_code != (5 if code in ACCESS else 11), f"{label}: {errors[0]}"
        outcome = f"error {result.exit_code}"
    elif scenario.expected is not None:
        got = answers(result.stdout)
        warned = "diplosearch: warning:" in result.stderr
        skipped = "diplosearch: warning: skipping " in result.stderr
        # The answer of a build from scratch, or with a warning saying why not: the
        # index as it was (no refresh) or a corpus file that could not be read.
        assert got == scenario.expected or (warned and (got == scenario.previous or skipped)), (
            f"{label}: wrong answer: {got} ({result.stderr!r})"
        )
        outcome = "answer" if got == scenario.expected else "answer with a warning"
    else:
        outcome = "done"
    if not injector.fired:
        outcome = "not reached"
    problems, _ = IndexStore(work / "index").verify()
    assert problems == [], f"{label}: verify after the fault: {problems}"
    after = run(work, ("search", "railway", "-k", "5", "--json"))
    assert after.exit_code == 0, f"{label}: the run after the fault: {after.output}"
    assert live(work / "index") == (scenario.scratch_chunks, scenario.scratch_sources), (
        f"{label}: the index after a clean run differs from a build from scratch"
    )
    if scenario.expected is not None:
        assert answers(after.stdout) == scenario.expected, f"{label}: answer after the fault"
    return outcome


def sites(scenario: Scenario, work: Path, injector: Injector) -> list[str]:
    """The call sites a clean run of ``scenario`` reaches, in the order first reached."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(scenario.base, work, symlinks=True)
    injector.calls.clear()
    result = run(work, scenario.args)
    assert result.exit_code == 0, result.output
    return list(injector.calls)


SEEDS = Path(__file__).resolve().parent.parent / "seeds"
RAILWAY = Path(__file__).resolve().parent / "fixtures" / "railway"
QUERY = ("search", "railway", "-k", "5", "--json")


@contextmanager
def test_model() -> Iterator[None]:
    """The CLI builds with the test model (tests/fakes.py): the harness is about files."""
    from diplosearch import models
    from tests.fakes import HashingModel

    real = models.MiniLM
    models.MiniLM = lambda *args, **kwargs: HashingModel()  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        models.MiniLM = real  # type: ignore[misc]


def _corpus(folder: Path, version: int) -> None:
    """Two versions of a small corpus of seed articles, a PDF and a web page: the second
    edits one, removes one and adds two (a Markdown note and the web page, which goes
    through the extraction cache), so a refresh re-reads, reuses, drops and adds."""
    seeds = folder / "seeds"
    if seeds.exists():
        shutil.rmtree(seeds)
    seeds.mkdir(parents=True)
    for name in ("000_2bc4590b1f4df84e.txt", "002_8c99b24f35ad4fd7.txt"):
        shutil.copy(SEEDS / name, seeds / name)
    shutil.copy(RAILWAY / "joint-statement.pdf", seeds / "statement.pdf")
    text = (SEEDS / "004_a4e9bfabf5eb1571.txt").read_text(encoding="utf-8")
    if version == 1:
        shutil.copy(SEEDS / "003_605b4ee0f7fb2dfc.txt", seeds / "003_605b4ee0f7fb2dfc.txt")
        (seeds / "004_a4e9bfabf5eb1571.txt").write_text(text, encoding="utf-8")
    else:
        (seeds / "004_a4e9bfabf5eb1571.txt").write_text(
            text + "\nThe railway line will be finished within three years.\n", encoding="utf-8"
        )
        (seeds / "notes.md").write_text(
            "# Notes\n\nRailway talks resumed in Tashkent on 6 June 2024.\n", encoding="utf-8"
        )
        shutil.copy(RAILWAY / "xinhua-kyrgyzstan.html", seeds / "page.html")


def prepare(root: Path) -> list[Scenario]:
    """Build the starting states; call with the test model installed, no injector."""
    scratch = root / "scratch"
    _corpus(scratch, 2)
    assert run(scratch, ("index",)).exit_code == 0
    expected = answers(run(scratch, QUERY).stdout)
    scratch_chunks, scratch_sources = live(scratch / "index")

    stale = root / "stale"  # an index of version 1, the corpus at version 2
    _corpus(stale, 1)
    assert run(stale, ("index",)).exit_code == 0
    previous = answers(run(stale, (*QUERY, "--no-refresh")).stdout)
    _corpus(stale, 2)
    fresh = root / "fresh"
    shutil.copytree(stale, fresh, symlinks=True)
    assert run(fresh, ("index",)).exit_code == 0
    common = dict(scratch_chunks=scratch_chunks, scratch_sources=scratch_sources)
    return [
        Scenario("search over a changed corpus", QUERY, stale, expected, previous, **common),
        # Its previous generation is the index of version 1: a damaged live generation
        # is answered from it, with a warning.
        Scenario("search over a fresh index", QUERY, fresh, expected, previous, **common),
        Scenario("index over a changed corpus", ("index",), stale, None, None, **common),
    ]


def run_all(root: Path) -> list[tuple[Scenario, list[str]]]:
    """Every scenario, every site, every errno; returns each scenario with its sites."""
    injector = Injector()
    done = []
    with test_model():
        scenarios = prepare(root)
        with injector.installed():
            for scenario in scenarios:
                reached = sites(scenario, root / "work", injector)
                for site in reached:
                    for code in ERRNOS:
                        outcome = check_case(scenario, root / "work", site, code, injector)
                        scenario.outcomes[outcome] += 1
                done.append((scenario, reached))
    return done


def report(done: list[tuple[Scenario, list[str]]]) -> str:
    all_sites = {site.split(" ")[0] for _, reached in done for site in reached}
    lines = []
    for scenario, reached in done:
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(scenario.outcomes.items()))
        lines.append(
            f"{scenario.name}: {len(reached)} call sites x {len(ERRNOS)} errors = "
            f"{sum(scenario.outcomes.values())} cases ({outcomes})"
        )
    cases = sum(sum(s.outcomes.values()) for s, _ in done)
    lines.append(f"in all: {len(all_sites)} lines of diplosearch, {cases} cases, 0 tracebacks")
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(report(run_all(Path(tmp))))
