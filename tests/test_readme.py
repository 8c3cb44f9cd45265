"""README and CI stay in step: CI runs the README's test command, word for word."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from diplosearch.cli import cli
from tests.conftest import REPO

#: A result's first line in the text output: rank, score, file:line, paragraph, date.
RESULT_LINE = re.compile(r"^ *(\d+)\. (\d+\.\d{3})  (\S+:\d+)  ¶(\d+)  (\S+)$", re.M)


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


def test_readme_example_is_what_the_tool_prints(real_index):
    """The front page's example: the same results, scores, citations and dates as a real
    search of the shipped seeds, the same --all count and the same JSON score."""
    seeds, index = real_index
    text = (REPO / "README.md").read_text(encoding="utf-8")
    example = text.split("## Example", 1)[1].split("\n## ", 1)[0]
    command = re.search(r'\$ diplosearch search "([^"]+)" -k (\d+)', example)
    assert command is not None
    query, k = command[1], command[2]
    where = ["--seeds", str(seeds), "--index", str(index)]
    shown = CliRunner().invoke(cli, ["search", query, "-k", k, *where], catch_exceptions=False)
    assert shown.exit_code == 0
    first_block = example.split("```text", 1)[1].split("```", 1)[0]
    assert RESULT_LINE.findall(first_block) == RESULT_LINE.findall(shown.output)
    assert len(RESULT_LINE.findall(first_block)) == int(k)
    everything = CliRunner().invoke(
        cli, ["search", query, "--all", "--json", *where], catch_exceptions=False
    )
    admitted = re.search(r"`--all` lists every passage the hybrid score admits, (\d+) here", text)
    assert admitted is not None
    assert int(admitted[1]) == len(json.loads(everything.stdout)["results"])
    top = CliRunner().invoke(cli, ["search", query, "--json", *where], catch_exceptions=False)
    score = re.search(r'"score": (\d+\.\d+),', text.split("### JSON output", 1)[1])
    assert score is not None
    assert float(score[1]) == json.loads(top.stdout)["results"][0]["score"]
