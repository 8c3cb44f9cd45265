"""README and CI stay in step: CI runs the README's test command, word for word."""

from __future__ import annotations

import re

from tests.conftest import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    run, test = readme_commands()
    assert "diplosearch search" in run and "pip install -e ." in run
    assert "pytest" in test
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test in ci


def test_no_pickle_in_the_package():
    for path in (REPO / "diplosearch").rglob("*.py"):
        code = path.read_text(encoding="utf-8")
        assert not re.search(r"import pickle|pickle\.|joblib|torch\.load\(|allow_pickle=True", code)
        loads = re.findall(r"np\.load\([^)]*\)", code)
        assert all("allow_pickle=False" in call for call in loads), path


def test_every_relative_link_in_readme_and_docs_resolves():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert len(pages) >= 6
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (page.parent / target).exists(), (page.name, target)
