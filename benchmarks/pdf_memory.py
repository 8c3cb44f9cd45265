"""Peak memory of reading a long PDF: a 1,000-page report against a 10-page one.

Each PDF is made by tests/fixtures/railway/make.py (46 lines of text a page, a running
header and page numbers) and read by ``diplosearch.ingest.formats.extract`` in a fresh
process, whose peak resident memory (``ru_maxrss``) is reported with the ratio to the
10-page anchor and the import-only baseline measured in the same run.

    python benchmarks/pdf_memory.py
"""

from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "fixtures" / "railway"))
import make  # noqa: E402 - the fixture generator, a plain script

_READ = """
import resource, sys, time
from pathlib import Path
from diplosearch.ingest.formats import extract
path = Path(sys.argv[1])
started = time.perf_counter()
if path.name != "none":
    extracted = extract(path.name, path.read_bytes())
    pages = max(marks[-1][1] for marks in extracted.pages)
else:
    import pypdf  # the libraries alone
    pages = 0
print(pages, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - started)
"""
TOPICS = ("trade", "energy", "transport", "customs", "water", "culture", "health")


def report(pages: int) -> bytes:
    paragraphs = 16 * pages  # a paragraph is two or three lines and a blank one
    text = [
        f"Paragraph {n} on {TOPICS[n % 7]} and {TOPICS[n // 7 % 7]} says the railway line "
        "from Kashgar to Andijan runs on through Torugart and Jalal-Abad."
        for n in range(paragraphs)
    ]
    return make.pdf(text, header="LONG REPORT", info_title="Long report", created="20230101")


def measure(path: Path) -> tuple[int, float, float]:
    out = subprocess.run(
        [sys.executable, "-c", _READ, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), int(out[1]) / 1024, float(out[2])


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        baseline = measure(Path(folder) / "none")
        for pages in (10, 1000):
            path = Path(folder) / f"report-{pages}.pdf"
            path.write_bytes(report(pages))
            size = path.stat().st_size
            read_pages, peak, seconds = measure(path)
            rows.append((pages, read_pages, size, peak, seconds))
    anchor = rows[0][3]
    machine = f"{platform.machine()}, Python {platform.python_version()}"
    print(f"# PDF memory ({time.strftime('%Y-%m-%d')}, {machine})\n")
    print(f"A process that imports pypdf and reads nothing: peak {baseline[1]:.0f} MB\n")
    print("| PDF | pages read | file | peak memory | vs 10 pages | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    for pages, read_pages, size, peak, seconds in rows:
        print(
            f"| {pages:,} pages asked | {read_pages:,} | {size / 2**20:.1f} MB | {peak:.0f} MB | "
            f"{peak / anchor:.2f}x | {seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
