"""Web page extraction on real pages: docs/formats.md says what the code measures.

benchmarks/extraction.py reads the 40 judged pages of tests/fixtures/web (trafilatura's
evaluation set) and counts judged sentences kept, judged boilerplate dropped, titles and
dates right, pages read at all. This test runs that measurement and fails when the table
under "Extraction quality" in docs/formats.md no longer shows the measured figures (after
a change to html.py or to trafilatura: run ``python benchmarks/extraction.py`` and copy its
summary table). Time is reported by the benchmark, never checked here.
"""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPO

PAGES = REPO / "tests" / "fixtures" / "web"
DOC = REPO / "docs" / "formats.md"
REQUIRED = (
    "football.ua.podolski.html",
    "xinhuanet.com.c_1125597921.html",
    "reuters.com.parasite.html",
)
_ROW_RE = re.compile(r"^\|\s*(.+?)\s*\|\s*(.+?)\s*\|\s*$")


def _benchmark() -> ModuleType:
    # By path: pysbd installs a top-level ``benchmarks`` package that shadows the folder.
    path = REPO / "benchmarks" / "extraction.py"
    spec = importlib.util.spec_from_file_location("diplosearch_bench_extraction", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _benchmark()


@pytest.fixture(scope="module")
def figures(bench: ModuleType) -> dict[str, Any]:
    return bench.measure(PAGES)


def documented_rows() -> dict[str, str]:
    """The table of the "Extraction quality" section of docs/formats.md: label -> value."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n## Extraction quality\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = _ROW_RE.match(line)
        if match and not set(match[2]) <= set("-:") and match[1] != "measure":
            rows[match[1]] = match[2]
    return rows


def test_the_sample_is_the_documented_one() -> None:
    judgements = json.loads((PAGES / "judgements.json").read_text(encoding="utf-8"))
    files = [entry["file"] for entry in judgements.values()]
    assert len(files) == 40 == len(set(files))
    assert set(REQUIRED) <= set(files)
    on_disk = {p.name for p in PAGES.iterdir() if p.suffix == ".html"}
    assert on_disk == set(files)
    for url, entry in judgements.items():
        assert url.startswith(("http://", "https://")), url
        assert entry["with"] and entry["without"], url


def test_figures_are_counts_of_the_sample(figures: dict[str, Any]) -> None:
    assert figures["pages"] == 40
    assert figures["extracted"] + len(figures["failures"]) == 40
    assert 0 < figures["with_found"] <= figures["with_total"]
    assert 0 <= figures["without_dropped"] <= figures["without_total"]
    assert figures["titles_judged"] > 0 and figures["dates_judged"] > 0


def test_title_rule(bench: ModuleType) -> None:
    assert bench.title_right("Parasite  scores | Reuters", "Parasite scores")
    assert bench.title_right("Parasite scores", " Parasite\nscores ")
    assert not bench.title_right("Navigation und Service", "Rede von Bundespräsident")
    assert not bench.title_right(None, "Parasite scores")


def test_docs_report_what_the_sample_measures(bench: ModuleType, figures: dict[str, Any]):
    measured = bench.summary_rows(figures)
    assert documented_rows() == measured, (
        "docs/formats.md, Extraction quality, no longer shows the measured figures; "
        "run python benchmarks/extraction.py and copy its summary table"
    )


def test_the_readme_states_the_measured_figures(bench: ModuleType, figures: dict[str, Any]):
    """The front page quotes four of the figures: they must be the measured ones."""
    measured = bench.summary_rows(figures)
    share = {label.split(" (")[0]: value.split()[0] for label, value in measured.items()}
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert (
        f"{share['main text kept']} of the judged article sentences are kept and "
        f"{share['boilerplate dropped']} of the judged boilerplate dropped; the title is "
        f"right on {share['title right']} of pages and the date on {share['date right']}"
    ) in readme
