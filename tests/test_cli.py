"""The command line: JSON contract, human output, errors as one line, help and README."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from diplosearch import store
from diplosearch.cli import cli
from tests.conftest import REPO

RAILWAY_QUESTION = "what was said about the China-Kyrgyzstan-Uzbekistan railway"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def corpus_args(seeds: Path, index: Path) -> list[str]:
    return ["--seeds", str(seeds), "--index", str(index)]


@pytest.fixture
def index_copy(real_index, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the real index and its corpus, for tests that change them."""
    seeds, index = real_index
    shutil.copytree(seeds, tmp_path / "seeds")
    shutil.copytree(index, tmp_path / "index")
    return tmp_path / "seeds", tmp_path / "index"


def test_json_contract(real_index):
    result = run("search", RAILWAY_QUESTION, "--json", "-k", "7", *corpus_args(*real_index))
    assert result.exit_code == 0
    payload = json.loads(result.stdout)  # exactly one JSON object
    assert set(payload) == {"query", "results"}
    assert payload["query"] == RAILWAY_QUESTION
    results = payload["results"]
    assert len(results) == 7
    assert [r["rank"] for r in results] == list(range(1, 8))
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    seeds = real_index[0]
    for r in results:
        assert isinstance(r["score"], float)
        assert (seeds / r["source"]).is_file()
        assert r["title"] is None or isinstance(r["title"], str)
        assert r["date"] is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["date"])
        assert isinstance(r["paragraph"], int) and r["paragraph"] >= 1
        start, end = r["lines"]
        assert 1 <= start <= end
        lines = (seeds / r["source"]).read_text(encoding="utf-8").split("\n")
        assert r["text"] in " ".join(line.strip() for line in lines[start - 1 : end])


def test_human_output_cites_source_lines_title_and_date(real_index):
    result = run("search", RAILWAY_QUESTION, "-k", "3", *corpus_args(*real_index))
    assert result.exit_code == 0
    out = result.stdout
    assert re.search(
        r"^ 1\. \d\.\d{3}  \S+\.txt:\d+  ¶\d+  (\d{4}-\d{2}-\d{2}|\(undated\))$", out, re.M
    )
    assert "003_605b4ee0f7fb2dfc.txt:27" in out
    assert "Xi urges China, Kyrgyzstan to promote high-quality Belt and Road cooperation" in out
    assert "2024-07-04" in out
    assert " 3. " in out and " 4. " not in out
    assert "searching for: the China-Kyrgyzstan-Uzbekistan railway" in result.stderr


def test_env_vars_choose_corpus_and_index(real_index):
    seeds, index = real_index
    result = CliRunner().invoke(
        cli,
        ["search", "railway", "--json", "-k", "1"],
        env={"DIPLOSEARCH_SEEDS": str(seeds), "DIPLOSEARCH_INDEX": str(index)},
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["results"]) == 1


def test_add_edit_delete_followed_by_next_search(index_copy):
    """Acceptance 2 end to end with the real model: no manual rebuild."""
    seeds, index = index_copy
    (seeds / "005_new.txt").write_text(
        "Railway line agreed\n\n"
        "TASHKENT, June 6 (Xinhua) -- Uzbek officials said construction of the "
        "China-Kyrgyzstan-Uzbekistan railway will start on July 1, 2024.\n",
        encoding="utf-8",
    )
    edited = next(seeds.glob("003_*.txt"))
    edited.write_text(
        edited.read_text(encoding="utf-8").replace(
            "accelerate the construction of the China-Kyrgyzstan-Uzbekistan railway project",
            "speed up the China-Kyrgyzstan-Uzbekistan railway, the flagship project",
        ),
        encoding="utf-8",
    )
    removed = next(seeds.glob("000_*.txt"))
    removed.unlink()

    result = run("search", RAILWAY_QUESTION, "--json", *corpus_args(seeds, index))
    assert result.exit_code == 0, result.stderr
    assert "(1 added, 1 changed, 1 removed)" in result.stderr
    assert "2 embedded" in result.stderr  # the new paragraph and the edited one
    results = json.loads(result.stdout)["results"]
    sources = [r["source"] for r in results]
    assert "005_new.txt" in sources
    assert removed.name not in sources
    assert any("the flagship project" in r["text"] for r in results)
    new = next(r for r in results if r["source"] == "005_new.txt")
    assert new["date"] == "2024-06-06" and new["title"] == "Railway line agreed"

    status = run("status", "--json", *corpus_args(seeds, index))
    assert json.loads(status.stdout)["fresh"] is True


def test_status_text_and_json(index_copy):
    seeds, index = index_copy
    result = run("status", *corpus_args(seeds, index))
    assert result.exit_code == 0
    assert "sentence-transformers/all-MiniLM-L6-v2 (384-d" in result.stdout
    assert "5 documents" in result.stdout and "up to date" in result.stdout
    next(seeds.glob("002_*.txt")).unlink()
    payload = json.loads(run("status", "--json", *corpus_args(seeds, index)).stdout)
    assert payload["fresh"] is False
    assert payload["changes"]["removed"] == ["002_8c99b24f35ad4fd7.txt"]
    assert payload["documents"] == 5


def test_index_command_is_idempotent(index_copy):
    result = run("index", *corpus_args(*index_copy))
    assert result.exit_code == 0
    assert "up to date" in result.stderr


def assert_one_line_error(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diplosearch: error:"), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_missing_corpus_is_one_line(tmp_path: Path):
    result = run("search", "x", *corpus_args(tmp_path / "nope", tmp_path / "index"))
    assert_one_line_error(result, 3, "corpus folder not found")
    (tmp_path / "a.txt").write_text("A file, not a folder.\n", encoding="utf-8")
    for command in (["search", "x"], ["index"], ["status"]):
        result = run(*command, *corpus_args(tmp_path / "a.txt", tmp_path / "index"))
        assert_one_line_error(result, 3, "corpus path is not a folder")


def test_damaged_index_is_one_line_and_untouched(index_copy):
    seeds, index = index_copy
    vectors = index / store.IndexStore(index).current() / store.VECTORS
    vectors.write_bytes(vectors.read_bytes()[:1000])
    result = run("search", "railway", *corpus_args(seeds, index))
    assert_one_line_error(result, 5, "vectors.faiss is damaged")
    assert len(vectors.read_bytes()) == 1000  # the evidence is left for the user


def test_missing_index_without_refresh_is_one_line(real_index, tmp_path: Path):
    seeds, _ = real_index
    result = run("search", "railway", "--no-refresh", *corpus_args(seeds, tmp_path / "none"))
    assert_one_line_error(result, 4, "no index")


@pytest.mark.parametrize("args", [["search", "  "], ["search", "x", "-k", "0"], ["search"]])
def test_bad_arguments_are_usage_errors(args, real_index):
    result = run(*args, *corpus_args(*real_index))
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_every_command_has_help_and_is_in_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert run("--help").exit_code == 0
    for name, command in cli.commands.items():
        result = run(name, "--help")
        assert result.exit_code == 0
        assert command.help and command.help.split("\n")[0] in result.stdout
        assert f"diplosearch {name}" in readme, name
        for param in command.params:
            longest = max(param.opts, key=len)
            if longest.startswith("--"):
                assert f"`{longest}" in readme, (name, longest)


def test_highlight_is_styled_exactly_and_wrapping_is_unchanged():
    from diplosearch.render import wrap_highlighted

    text = "First sentence here. Second one is highlighted. Third."
    lines = wrap_highlighted(text, (21, 47), 30, "  ")
    assert [click.unstyle(line) for line in lines] == [
        "  First sentence here. Second",
        "  one is highlighted. Third.",
    ]
    assert click.style("Second", bold=True, underline=True) in lines[0]
    assert click.style("one is highlighted.", bold=True, underline=True) in lines[1]
    assert "Third." in lines[1] and click.style("Third.", bold=True, underline=True) not in lines[1]


def test_second_index_command_names_the_lock_holder(real_index):
    from diplosearch.store import IndexStore

    seeds, index = real_index
    with IndexStore(index).writer_lock():
        result = run("index", "--wait", "0", *corpus_args(seeds, index))
    assert_one_line_error(result, 9, f"is being written by process {os.getpid()} on ")
    assert run("index", *corpus_args(seeds, index)).exit_code == 0  # free once released


def _damage_current_flip(index: Path) -> None:
    data = bytearray((index / "CURRENT").read_bytes())
    data[3] ^= 0x01
    (index / "CURRENT").write_bytes(bytes(data))


def _damage_current_empty(index: Path) -> None:
    (index / "CURRENT").write_bytes(b"")


def _damage_current_folder(index: Path) -> None:
    (index / "CURRENT").unlink()
    (index / "CURRENT").mkdir()


def _damage_every_manifest(index: Path) -> None:
    for manifest in index.glob("gen-*/manifest.json"):
        manifest.write_text("{}", encoding="utf-8")


@pytest.mark.parametrize(
    "damage",
    [_damage_current_flip, _damage_current_empty, _damage_current_folder, _damage_every_manifest],
)
def test_the_advice_of_a_damage_message_repairs_the_index(index_copy, damage):
    """Whatever the message tells the user to run works: run exactly that, and the index
    answers again, with the damaged file set aside rather than deleted."""
    seeds, index = index_copy
    damage(index)
    failed = run("search", RAILWAY_QUESTION, *corpus_args(seeds, index))
    assert failed.exit_code == 5
    advice = re.search(r"`(diplosearch [a-z -]+)`", failed.output)
    assert advice is not None, failed.output
    words = advice[1].split()[1:]
    repaired = run(*words, *corpus_args(seeds, index))
    assert repaired.exit_code == 0, repaired.output
    assert any(p.name.startswith("damaged-") for p in index.iterdir())
    answered = run("search", RAILWAY_QUESTION, "--json", "-k", "5", *corpus_args(seeds, index))
    assert answered.exit_code == 0
    assert len(json.loads(answered.stdout)["results"]) == 5
    problems = run("verify", "--index", str(index)).output
    assert "set aside: damaged-" in problems and "problem(s) found" in problems


def test_odd_things_in_the_index_folder_are_one_line_errors(index_copy):
    """What the index folder may hold that was never written there: each is one line and
    its exit code, never a traceback, and the index is left as it is."""
    seeds, index = index_copy
    (index / store.LOCK).unlink(missing_ok=True)
    (index / store.LOCK).mkdir()  # a folder where the lock file goes
    result = run("index", "--rebuild", *corpus_args(seeds, index))
    assert_one_line_error(result, 7, ".lock")
    assert run("search", "railway", "-k", "1", *corpus_args(seeds, index)).exit_code == 0
    (index / store.LOCK).rmdir()

    meta = next(index.glob("encoders/*/encoder.json"))
    kept = meta.read_text(encoding="utf-8")
    data = json.loads(kept)
    del data["dimension"]  # an encoder description missing a key
    meta.write_text(json.dumps(data), encoding="utf-8")
    args = ("railway", *corpus_args(seeds, index))
    assert_one_line_error(run("search", "--no-refresh", *args), 5, "encoder")
    repaired = run("search", *args)  # the manifest lists the encoder's files: re-exported
    assert repaired.exit_code == 0 and "query encoder is damaged" in repaired.output
    assert meta.read_text(encoding="utf-8") == kept

    shutil.move(index / "encoders", index.parent / "encoders-kept")
    (index / "encoders").write_text("a file where the encoders folder goes", encoding="utf-8")
    assert_one_line_error(run("search", "--no-refresh", *args), 5, "encoder")
    assert_one_line_error(run("search", *args), 7, "encoders")


def _as_another_user(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user who may read everything and write nothing of ours: as root,
    the user nobody keeping only CAP_DAC_READ_SEARCH (reading past permissions, so the
    interpreter and the test's folders stay readable); as anyone else, that user, the
    index having been made read-only."""
    command = [sys.executable, "-m", "diplosearch", *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            if os.environ.get("CI") == "true":
                pytest.fail("setpriv (util-linux) is needed to run as another user")
            pytest.skip("setpriv (util-linux) is needed to run as another user")
        command = [
            setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
            "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", *command,
        ]  # fmt: skip
    env = {**os.environ, "HOME": "/nonexistent", "PYTHONPATH": str(REPO)}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd="/", timeout=300)


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


def test_a_read_only_index_is_searched_by_another_user(index_copy, tmp_path: Path):
    """A team's shared index, read-only to this user (before: Tantivy's reader wanted to
    create a lock file, reported as damage with exit 5, and a stale index gave a
    PermissionError traceback). Reading needs no write access; writing is refused with a
    permission error (exit 11), never called damage."""
    seeds, index = index_copy
    args = ["--seeds", str(seeds), "--index", str(index)]
    for path in [index, *index.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    before = _tree(index)

    found = _as_another_user(["search", RAILWAY_QUESTION, "-k", "5", "--json", *args])
    assert found.returncode == 0, found.stderr
    assert [
        line for line in found.stderr.splitlines() if not line.startswith("searching for")
    ] == []
    assert len(json.loads(found.stdout)["results"]) == 5

    (seeds / "extra.txt").write_text("Railway talks resumed.\n", encoding="utf-8")
    stale = _as_another_user(["search", "railway", "-k", "3", *args])
    assert stale.returncode == 0, stale.stderr
    warning = stale.stderr.strip().splitlines()
    assert len(warning) == 1 and "no permission to write the index" in warning[0]
    assert "answering from the index as it is" in warning[0]

    written = _as_another_user(["index", *args])
    assert written.returncode == 11, written.stderr
    assert written.stderr.startswith("diplosearch: error: no permission to write the index")
    assert len(written.stderr.strip().splitlines()) == 1
    assert _tree(index) == before  # nothing was written, nothing set aside

    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    missing = _as_another_user(
        ["search", "railway", "--seeds", str(seeds), "--index", str(parent / "index")]
    )
    assert missing.returncode == 11, missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "no permission to write the index" in missing.stderr
    for path in [index, *index.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)  # so that pytest can clean up


@pytest.mark.parametrize("damage", ["deleted", "flipped"])
def test_a_damaged_query_encoder_is_found_and_exported_again(index_copy, damage):
    """The ONNX query encoder is as much part of the answer as the vectors (before: a
    deleted model.onnx failed every search while `index` said up to date and `verify`
    said sound; 2,000 flipped bytes gave exit 0 with dense results silently empty). Its
    files are checksummed in the manifest: `verify` finds the damage, `--no-refresh`
    refuses with the advice, and running the advice exports it again, byte for byte."""
    seeds, index = index_copy
    model = next(index.glob("encoders/*/model.onnx"))
    kept = model.read_bytes()
    if damage == "deleted":
        model.unlink()
    else:
        data = bytearray(kept)
        for i in random.Random(7).sample(range(len(data)), 2000):
            data[i] ^= 0xFF
        model.write_bytes(bytes(data))
    args = (RAILWAY_QUESTION, "--json", "-k", "5", *corpus_args(seeds, index))
    assert "query encoder is damaged" in run("verify", "--index", str(index)).output
    refused = run("search", "--no-refresh", *args)
    assert_one_line_error(refused, 5, "model.onnx")
    advice = re.search(r"`(diplosearch [a-z -]+)`", refused.stderr)
    assert advice is not None and advice[1] == "diplosearch index"
    assert run("index", *corpus_args(seeds, index)).exit_code == 0
    assert model.read_bytes() == kept
    assert "index is sound" in run("verify", "--index", str(index)).output
    answered = run("search", "--no-refresh", *args)
    assert answered.exit_code == 0 and len(json.loads(answered.stdout)["results"]) == 5


def test_show_prints_a_passage_with_its_neighbours(real_index):
    """Read around a result: the paragraph a search cites, marked, with N on each side."""
    args = corpus_args(*real_index)
    shown = run("show", "003_605b4ee0f7fb2dfc.txt", "13", "-C", "1", *args)
    assert shown.exit_code == 0, shown.output
    lines = click.unstyle(shown.stdout).splitlines()
    assert lines[0] == "003_605b4ee0f7fb2dfc.txt  ¶13  2024-07-04"
    marked = [line for line in lines if line.startswith(("» ", "  ¶"))]
    assert marked == ["  ¶12  003_605b4ee0f7fb2dfc.txt:25", "» ¶13  003_605b4ee0f7fb2dfc.txt:27"]
    assert "China-Kyrgyzstan-Uzbekistan railway" in shown.stdout
    payload = json.loads(run("show", "003_605b4ee0f7fb2dfc.txt", "13", "--json", *args).stdout)
    assert [p["paragraph"] for p in payload["passages"]] == [11, 12, 13]  # -C 2, the last
    assert [p["asked"] for p in payload["passages"]] == [False, False, True]
    # The citation a search gives is the one show takes.
    found = json.loads(run("search", RAILWAY_QUESTION, "--json", "-k", "1", *args).stdout)
    first = found["results"][0]
    again = json.loads(run("show", first["source"], str(first["paragraph"]), "-C", "0",
                           "--json", *args).stdout)  # fmt: skip
    assert again["passages"][0]["text"] == first["text"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["nope.txt", "1"], "no document 'nope.txt'"),
        (["003_605b4ee0f7fb2dfc.txt", "99"], "has no paragraph 99; it has paragraphs 1 to 13"),
    ],
)
def test_show_of_something_not_indexed_is_one_line(real_index, args, fragment):
    assert_one_line_error(run("show", *args, *corpus_args(*real_index)), 2, fragment)


def test_since_a_year_and_until_a_month_count_what_they_leave_out(real_index):
    args = corpus_args(*real_index)
    result = run("search", "railway", "--since", "2023", "--until", "2023-10", "--json", *args)
    assert result.exit_code == 0, result.output
    dates = [r["date"] for r in json.loads(result.stdout)["results"]]
    assert dates and all("2023-01-01" <= d <= "2023-10-31" for d in dates)
    assert "leaves out" in result.stderr and "undated passages" in result.stderr
    assert_one_line_error(run("search", "railway", "--since", "May", *args), 2, "YYYY-MM")


def test_files_that_are_not_documents_are_named_in_search_and_status(index_copy):
    """A file left out is never left out without a word: one of another format, or one
    that cannot be read as its own, is named once, with why, by every search and by
    status (hidden files stay unmentioned)."""
    seeds, index = index_copy
    (seeds / "statement.pdf").write_bytes(b"%PDF-1.7\n")
    (seeds / "page.html").write_text("<!DOCTYPE html><title>Readout</title>", encoding="utf-8")
    (seeds / "memo.rtf").write_text("{\\rtf1 Readout}", encoding="utf-8")
    (seeds / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    for attempt in range(2):  # the second search names them without reading them
        found = run("search", "railway", "-k", "1", *corpus_args(seeds, index))
        assert found.exit_code == 0
        warnings = sorted(line for line in found.stderr.splitlines() if "warning" in line)
        assert warnings == [
            "diplosearch: warning: skipping memo.rtf: unsupported format .rtf (documents are "
            ".txt, .md, .html, .htm, .pdf and .docx files)",
            "diplosearch: warning: skipping page.html: no main text found in this web page",
            "diplosearch: warning: skipping statement.pdf: the PDF is damaged or truncated "
            "(Stream has ended unexpectedly)",
        ], attempt
    status = run("status", *corpus_args(seeds, index)).stdout
    assert "warning: skipping memo.rtf: unsupported format .rtf" in status
    assert "warning: skipping page.html: no main text" in status
    assert "warning: skipping statement.pdf: the PDF is damaged" in status
    assert "stale" not in status
    assert "DS_Store" not in found.stderr + status
