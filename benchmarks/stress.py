"""Stress runs too long for the test suite (see tests/test_robustness.py for the CI versions).

    python benchmarks/stress.py [--kills 100] [--line-mb 50]

1. A document that is one 50 MB line, through the whole build (real tokenizer for the
   chunking, the tests' hashing model for vectors): time, chunks, peak memory, verify.
2. A real full disk: the index on a small tmpfs (needs root to mount; skipped otherwise),
   a build that cannot fit, then the previous generation must answer identically.
3. Many more kill -9 at random moments of a build than CI runs.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from diplosearch.engine import Engine  # noqa: E402
from diplosearch.errors import IndexWriteError  # noqa: E402
from diplosearch.models import MiniLM  # noqa: E402
from diplosearch.store import IndexStore  # noqa: E402
from tests.fakes import HashingModel  # noqa: E402


class TokenizedHashing(HashingModel):
    """The tests' hashing vectors, but chunked by the real model's tokenizer and window."""

    def __init__(self) -> None:
        super().__init__()
        self._real = MiniLM()
        self.max_tokens = self._real.max_tokens

    def count_tokens(self, text: str) -> int:
        return self._real.count_tokens(text)


def peak_mb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) // 1024


def huge_line(work: Path, megabytes: int) -> None:
    corpus = work / "huge"
    corpus.mkdir()
    sentence = b"The ministers said the railway will open soon and trade will grow. "
    with (corpus / "one-line.txt").open("wb") as handle:
        handle.write(b"One line\n\n")
        for _ in range(megabytes * 1024 * 1024 // len(sentence)):
            handle.write(sentence)
        handle.write(b"\n")
    engine = Engine(corpus, work / "huge-index", TokenizedHashing())
    start = time.perf_counter()
    report = engine.refresh()
    seconds = time.perf_counter() - start
    problems, _ = IndexStore(work / "huge-index").verify()
    hits = engine.search("railway", 3, refresh=False).results
    print(f"| {megabytes} MB single line | {report.chunks} chunks | {seconds:.1f} s build "
          f"| peak {peak_mb()} MB | verify: {problems if problems else 'ok'} "
          f"| search: {len(hits)} results |")  # fmt: skip


def full_disk(work: Path) -> None:
    mount = work / "tmpfs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                      capture_output=True).returncode:  # fmt: skip
        print("| real full disk | skipped: cannot mount a tmpfs here (not root) |")
        return
    try:
        seeds = work / "seeds"
        shutil.copytree(REPO / "seeds", seeds)
        engine = Engine(seeds, mount / "index", HashingModel())
        engine.refresh()
        before = [r.chunk_id for r in engine.search("railway", 10, refresh=False).results]
        (seeds / "big.txt").write_text(
            "Big\n\n"
            + "\n\n".join(f"Paragraph {i} about trade and the railway." for i in range(40_000))
        )
        try:
            Engine(seeds, mount / "index", HashingModel()).refresh()
            outcome = "build fitted (make the tmpfs smaller)"
        except IndexWriteError as exc:
            outcome = f"refused: {exc}"
        after = [r.chunk_id for r in engine.search("railway", 10, refresh=False).results]
        problems, _ = IndexStore(mount / "index").verify()
        print(f"| real full disk (3 MB tmpfs) | {outcome[:90]}… | previous answers identical: "
              f"{before == after} | verify: {problems if problems else 'ok'} |")  # fmt: skip
    finally:
        # Lazily: the engine above still maps the index's files until it is collected.
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


KILL_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from diplosearch.engine import Engine
from tests.fakes import HashingModel
engine = Engine(Path({seeds!r}), Path({index!r}), HashingModel())
print("start", flush=True)
engine.refresh(rebuild=True)
"""


def random_kills(work: Path, kills: int) -> None:
    seeds = work / "kill-seeds"
    shutil.copytree(REPO / "seeds", seeds)
    index = work / "kill-index"
    engine = Engine(seeds, index, HashingModel())
    engine.refresh()
    expected = [r.chunk_id for r in engine.search("railway", 10, refresh=False).results]
    code = KILL_SCRIPT.format(repo=str(REPO), seeds=str(seeds), index=str(index))

    def launch() -> subprocess.Popen:
        """A build whose start-up is over: moments are drawn over the build itself."""
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert process.stdout is not None and process.stdout.readline() == b"start\n"
        return process

    first = launch()
    start = time.perf_counter()
    first.wait()
    duration = time.perf_counter() - start
    rng = random.Random(1)
    killed = bad = 0
    for _ in range(kills):
        process = launch()
        time.sleep(rng.uniform(0, duration))
        process.send_signal(signal.SIGKILL)
        killed += process.wait() == -signal.SIGKILL
        answer = [r.chunk_id for r in Engine(seeds, index, HashingModel()).search(
            "railway", 10, refresh=False).results]  # fmt: skip
        bad += answer != expected or bool(IndexStore(index).verify()[0])
    print(
        f"| kill -9 at random moments | {kills} runs, {killed} killed mid-build "
        f"| wrong answers or failed verify: {bad} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--line-mb", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("| run | result | | | |\n|---|---|---|---|---|")
        random_kills(work, args.kills)
        full_disk(work)
        huge_line(work, args.line_mb)


if __name__ == "__main__":
    main()
