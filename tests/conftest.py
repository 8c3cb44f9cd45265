from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

from diplosearch.engine import Engine
from tests.fakes import HashingModel

# Property tests explore new inputs on every run at a desk, where a new failing example
# is news; in CI (CI=true) they draw the same inputs every time, so that a submission
# fails for its own change, not for an old bug the search happened to reach that day.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI", "").lower() == "true":
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """A private copy of the shipped corpus that a test may change."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture
def fake_engine(seeds: Path, tmp_path: Path) -> Engine:
    return Engine(seeds, tmp_path / "index", HashingModel())


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(seeds, index) built once with the real model; tests must not change either."""
    root = tmp_path_factory.mktemp("real")
    seeds = root / "seeds"
    shutil.copytree(SEEDS, seeds)
    Engine(seeds, root / "index").refresh()
    return seeds, root / "index"


#: What a query must never import: seconds of start-up (torch alone is most of them).
HEAVY_MODULES = ("torch", "transformers", "sentence_transformers", "sklearn")


def heavy_imports_of_a_search(seeds: Path, index: Path, query: str) -> list[str]:
    """The heavy modules a real CLI search imports, in a new process (the search must
    answer)."""
    import json
    import subprocess
    import sys

    code = (
        "import sys, json\n"
        "from diplosearch.cli import cli\n"
        f"cli(['search', {query!r}, '--json', '--seeds', {str(seeds)!r},"
        f" '--index', {str(index)!r}], standalone_mode=False)\n"
        f"heavy = sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)\n"
        "print(json.dumps(heavy), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["results"]
    return json.loads(done.stderr.strip().splitlines()[-1])
