"""Malformed corpora and queries: indexed or skipped with one warning each, never a crash."""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from diplosearch.cli import cli
from diplosearch.engine import Engine
from diplosearch.filters import Filters
from diplosearch.ingest import corpus
from tests.conftest import REPO
from tests.fakes import HashingModel

TEXT = "Title line\r\n\r\nFirst paragraph here.\r\n\r\nSecond paragraph here.\r\n"


def make_corpus(root: Path, outside: Path) -> dict[str, str | None]:
    """Write the fixtures; returns {name: expected warning fragment, or None if indexed}."""
    root.mkdir()
    expected: dict[str, str | None] = {}

    def put(name: str, data: bytes, warning: str | None = None) -> None:
        (root / name).write_bytes(data)
        expected[name] = warning

    put("bom-utf8.txt", codecs.BOM_UTF8 + TEXT.encode())
    put("utf16-bom.txt", TEXT.encode("utf-16"))
    put("utf16be-bom.txt", codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"))
    put("utf16le-no-bom.txt", TEXT.encode("utf-16-le"))
    put("utf32.txt", TEXT.encode("utf-32"))
    put("crlf.txt", TEXT.encode())
    put("cr.txt", TEXT.replace("\r\n", "\r").encode())
    put("mixed-endings.txt", b"Title line\r\n\nFirst paragraph here.\r\rSecond paragraph here.\n")
    put(
        "latin1.txt",
        "Title line\n\nCaf\xe9 au lait was served.\n".encode("latin-1"),
        "invalid UTF-8",
    )
    put("nul.txt", b"Title line\n\nSome\x00 text with a NUL byte.\n", "NUL bytes removed")
    put("binary.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, "a binary file")
    put("empty.txt", b"")
    put("blank.txt", b"\n\n   \n\t\n")
    put("huge-line.txt", b"Huge\n\n" + b"The ministers met again and talked. " * 140_000 + b"\n")
    put("no-spaces.txt", b"Run\n\n" + b"x" * 300_000 + b"\n")
    put("controls.txt", b"Title line\n\nRed \x1b[31mALERT\x1b[0m and \xe2\x80\xaereversed text.\n")
    put("boilerplate-only.txt", b"Leave a Reply\n\nYour email address will not be published.\n")
    put("bad\x1bname.txt", b"Title line\n\nA file name with an escape character.\n")
    (root / "deep" / "er" / "still").mkdir(parents=True)
    put("deep/er/still/nested.md", b"# Nested\n\nA nested document.\n")
    put("notes.pdf", b"%PDF-1.4 not a whole PDF", "the PDF is damaged or truncated")
    put("memo.rtf", b"{\\rtf1 a format not read}", "unsupported format .rtf")
    put("README", b"no extension at all", "unsupported file without an extension")
    (root / ".hidden.txt").write_text("hidden files are ignored")

    (outside / "secret.txt").write_text("Outside\n\nThis must never be indexed.\n")
    os.symlink(outside / "secret.txt", root / "outside-link.txt")
    expected["outside-link.txt"] = "outside the corpus"
    os.symlink(root / "loop-b.txt", root / "loop-a.txt")
    os.symlink(root / "loop-a.txt", root / "loop-b.txt")
    expected["loop-a.txt"] = expected["loop-b.txt"] = "link loop"
    os.symlink(root / "nowhere.txt", root / "broken-link.txt")
    expected["broken-link.txt"] = "broken link"
    os.symlink(root / "crlf.txt", root / "inside-link.txt")
    expected["inside-link.txt"] = None  # a link within the corpus is a document
    os.mkfifo(root / "fifo.txt")
    expected["fifo.txt"] = "a FIFO"
    try:
        os.mknod(root / "device.txt", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        expected["device.txt"] = "a device file"
    except PermissionError:  # no CAP_MKNOD: a link to a device outside the corpus instead
        os.symlink("/dev/null", root / "device.txt")
        expected["device.txt"] = "outside the corpus"
    (root / "folder.txt").mkdir()
    (root / "folder.txt" / "inside.txt").write_text("Never read\n\nHidden by its folder.\n")
    expected["folder.txt"] = "a folder named like a document"
    (outside / "linked-folder").mkdir()
    (outside / "linked-folder" / "doc.txt").write_text("Linked\n\nThrough a linked folder.\n")
    os.symlink(outside / "linked-folder", root / "linked-folder")
    expected["linked-folder"] = "a linked folder"
    put("unreadable.txt", b"Title line\n\nNobody may read this.\n", "Permission denied")
    return expected


@pytest.fixture
def malformed(tmp_path: Path, monkeypatch) -> tuple[Path, dict[str, str | None]]:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "corpus"
    expected = make_corpus(root, outside)
    real_open = os.open

    def deny(path, flags, *args, **kwargs):
        if os.path.basename(path) == "unreadable.txt":  # chmod 000 does not stop root
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(corpus.os, "open", deny)
    return root, expected


def test_malformed_fixtures_indexed_or_skipped_with_one_warning_each(malformed, tmp_path):
    root, expected = malformed
    assert len(expected) >= 20
    engine = Engine(root, tmp_path / "index", HashingModel(max_tokens=60))
    report = engine.refresh()  # never raises
    assert report is not None
    manifest = engine.store.read_manifest()
    notices = engine.notices
    for name, warning in expected.items():
        mentions = [n for n in notices if f" {name}:" in f" {n}" or f"{name}: " in n]
        if warning is None:
            assert name in manifest.sources, name
            assert mentions == [], (name, mentions)
        elif name in manifest.sources:  # indexed, with its one warning
            assert len(mentions) == 1 and warning in mentions[0], (name, mentions)
        else:
            assert len(mentions) == 1 and warning in mentions[0], (name, notices)
    assert set(manifest.sources) == {n for n, w in expected.items()
                                     if w is None or "invalid" in w or "NUL" in w}  # fmt: skip
    assert len(notices) == sum(w is not None for w in expected.values())

    chunks = engine.store.load("test/hashing", 64).chunks
    by_source: dict[str, list] = {}
    for chunk in chunks:
        by_source.setdefault(chunk.source, []).append(chunk)
    same_text = ["bom-utf8.txt", "utf16-bom.txt", "utf16be-bom.txt", "utf16le-no-bom.txt"]
    same_text += ["utf32.txt", "crlf.txt", "cr.txt", "mixed-endings.txt", "inside-link.txt"]
    for name in same_text:
        got = [(c.line_start, c.text) for c in by_source[name]]
        assert got == [(3, "First paragraph here."), (5, "Second paragraph here.")], name
        assert manifest.sources[name].title == "Title line", name
    assert "\ufffd" in by_source["latin1.txt"][0].text
    assert by_source["nul.txt"][0].text == "Some text with a NUL byte."
    for name in ("empty.txt", "blank.txt", "boilerplate-only.txt"):
        assert manifest.sources[name].chunks == 0
    assert all(c.text for c in chunks)
    huge = by_source["huge-line.txt"]
    assert len(huge) > 100 and all(len(c.text.split()) <= 60 for c in huge)
    assert {c.line_start for c in huge} == {3}
    assert "".join(c.text for c in by_source["no-spaces.txt"]) == "x" * 300_000
    assert by_source["deep/er/still/nested.md"][0].text == "A nested document."
    assert not any("never be indexed" in c.text or "linked folder" in c.text for c in chunks)


def test_control_characters_are_escaped_in_terminal_and_json_output(malformed, tmp_path):
    root, _ = malformed
    index = tmp_path / "index"
    Engine(root, index, HashingModel()).refresh()
    # The CLI's own model is the real one; render the fake index's results directly.
    from diplosearch import render

    engine = Engine(root, index, HashingModel())
    results = engine.search("what was said about \x1b[2J red ALERT", 50, refresh=False).results
    alert = next(r for r in results if "ALERT" in r.text)
    text = render.result(alert, 100)
    assert "\x1b[31m" not in text and "\\x1b[31mALERT" in click_unstyle(text)
    assert "\u202e" not in text and "\\u202e" in text
    named = engine.search("escape", 5, refresh=False, filters=Filters(source="bad*")).results[0]
    assert "\\x1bname.txt" in render.result(named, 100)
    payload = render.json_text({"text": alert.text, "source": named.source})
    assert "\u202e" not in payload and "\x1b" not in payload
    assert json.loads(payload) == {"text": alert.text, "source": named.source}
    assert render.printable("searching for: \x1b[2J x") == "searching for: \\x1b[2J x"


def click_unstyle(text: str) -> str:
    import click

    return click.unstyle(text)


def test_huge_single_line_in_bounded_memory(tmp_path: Path):
    """A 20 MB line with the real tokenizer in a fresh process: linear time, bounded memory.
    (benchmarks/stress.py runs the 50 MB case.)"""
    code = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from diplosearch.ingest.chunker import parse_document
from diplosearch.models import MiniLM
model = MiniLM()
text = "Headline\\n\\n" + "The ministers said the railway will open soon. " * 420_000
doc = parse_document("big.txt", text, model.count_tokens, model.max_tokens)
assert all(model.count_tokens(c.text) <= model.max_tokens for c in doc.chunks[::97])
# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(len(doc.chunks), peak // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    chunks, peak_mb = map(int, out.stdout.split())
    assert chunks > 15_000
    assert peak_mb < 600, peak_mb


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["search", "x" * 2001], "the limit is 2,000"),
        (["search", "railway", "-k", "0"], "1<=x<=1000"),
        (["search", "railway", "-k", "1001"], "1<=x<=1000"),
        (["search", "   "], "the query is empty"),
    ],
)
def test_bad_queries_are_refused_clearly(args, fragment, real_index):
    seeds, index = real_index
    result = CliRunner().invoke(cli, [*args, "--seeds", str(seeds), "--index", str(index)])
    assert result.exit_code == 2
    assert fragment in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_corpus_decode_never_fails():
    for data in (b"\xff\xfe\x00", b"\xfe\xff\xd8", b"\x00" * 10, b"\xc3\x28 ok", bytes(range(256))):
        text, _warnings = corpus.decode(data, "x.txt")
        assert isinstance(text, str) and "\x00" not in text


# -- a file that changes between the scan and the read ------------------------------------


def _race(monkeypatch, change) -> None:
    """Run ``change`` once, after the build's scan has hashed the corpus and just before it
    reads the first changed document: the deterministic form of a file rewritten or
    swapped during a build."""
    real_read = corpus.SourceFile.read_bytes

    def change_then_read(self):
        change()
        monkeypatch.setattr(corpus.SourceFile, "read_bytes", real_read)
        return real_read(self)

    monkeypatch.setattr(corpus.SourceFile, "read_bytes", change_then_read)


def test_a_file_rewritten_during_a_build_is_indexed_as_read(seeds: Path, tmp_path, monkeypatch):
    engine = Engine(seeds, tmp_path / "index", HashingModel())
    target = seeds / "004_a4e9bfabf5eb1571.txt"
    # cp over a file truncates it, then writes: the build reads it in between.
    _race(monkeypatch, lambda: target.write_bytes(b""))
    engine.refresh()
    entry = engine.store.read_manifest().sources[target.name]
    assert entry.chunks == 0 and entry.sha256 == hashlib.sha256(b"").hexdigest()
    assert any("changed while it was read" in n for n in engine.notices)
    # The write completes: the manifest's hash is what was indexed, so the change shows.
    target.write_text("The Aktobe consulate opened its doors.\n", encoding="utf-8")
    assert engine.status().changes
    engine.refresh()
    chunks = engine.store.load("test/hashing", 64).chunks
    assert [c.text for c in chunks if c.source == target.name] == [
        "The Aktobe consulate opened its doors."
    ]
    assert engine.store.verify()[0] == []


def test_a_file_swapped_for_a_link_during_a_build_is_not_read(seeds: Path, tmp_path, monkeypatch):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:secret line from outside the corpus\n", encoding="utf-8")
    target = seeds / "004_a4e9bfabf5eb1571.txt"

    def swap() -> None:
        target.unlink()
        os.symlink(secret, target)

    engine = Engine(seeds, tmp_path / "index", HashingModel())
    _race(monkeypatch, swap)
    engine.refresh()
    assert target.name not in engine.store.read_manifest().sources
    assert any(f"skipping {target.name}: it is now a symbolic link" in n for n in engine.notices)
    chunks = engine.store.load("test/hashing", 64).chunks
    assert not any("secret" in c.text for c in chunks)
    # The next scan sees the link for what it is, and skips it.
    engine.refresh()
    assert any("a link to a file outside the corpus" in n for n in engine.notices)


def test_a_file_replaced_by_another_during_a_build_waits_for_the_next(
    seeds: Path, tmp_path, monkeypatch
):
    target = seeds / "004_a4e9bfabf5eb1571.txt"
    other = tmp_path / "other.txt"
    other.write_text("A different file moved into place.\n", encoding="utf-8")
    engine = Engine(seeds, tmp_path / "index", HashingModel())
    _race(monkeypatch, lambda: os.replace(other, target))
    engine.refresh()
    assert target.name not in engine.store.read_manifest().sources
    assert any("it was replaced by another file" in n for n in engine.notices)
    engine.refresh()  # read afresh: now it is the file the scan sees
    assert engine.store.read_manifest().sources[target.name].chunks == 1


# -- names and queries that are not UTF-8 --------------------------------------------------


def test_a_name_that_is_not_utf8_is_indexed_and_cited_escaped(tmp_path: Path):
    corpus_dir = tmp_path / "corpus"
    (corpus_dir / "d\xe9p\xf4t").mkdir(parents=True)  # a valid non-ASCII folder name
    raw = os.fsencode(corpus_dir) + b"/caf\xe9.txt"  # Latin-1, as archives from Windows
    with open(raw, "wb") as handle:
        handle.write(b"Le caf\xc3\xa9 de Bishkek.\n")
    with open(os.fsencode(corpus_dir) + b"/d\xc3\xa9p\xc3\xb4t/\xff\xfe.md", "wb") as handle:
        handle.write(b"A note in a folder.\n")
    engine = Engine(corpus_dir, tmp_path / "index", HashingModel())
    engine.refresh()
    sources = engine.store.read_manifest().sources
    assert set(sources) == {"caf\\xe9.txt", "d\xe9p\xf4t/\\xff\\xfe.md"}
    assert [n for n in engine.notices if "not valid UTF-8" in n] == [
        "caf\\xe9.txt: the file name is not valid UTF-8; cited as shown here",
        "d\xe9p\xf4t/\\xff\\xfe.md: the file name is not valid UTF-8; cited as shown here",
    ]
    hits = engine.search("Bishkek", 1, mode="lexical").results
    assert hits[0].source == "caf\\xe9.txt" and hits[0].text == "Le caf\xe9 de Bishkek."
    assert engine.store.verify()[0] == []


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
def test_cli_with_names_and_queries_that_are_not_utf8(tmp_path: Path, locale: str):
    """Through the real command line, in the C locale too: the file is found and cited,
    and a query holding bytes that are not UTF-8 is searched with them replaced."""
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    with open(os.fsencode(corpus_dir) + b"/caf\xe9.txt", "wb") as handle:
        handle.write(b"The Bishkek cafe reopened after the talks.\n")
    env = dict(os.environ, LC_ALL=locale, HF_HUB_OFFLINE="1")
    where = [b"--seeds", os.fsencode(corpus_dir), b"--index", os.fsencode(tmp_path / "index")]
    for query in (b"Bishkek cafe", b"caf\xe9 in Bishkek"):
        run = subprocess.run(
            [sys.executable, b"-m", b"diplosearch", b"search", query, b"--json", *where],
            capture_output=True, env=env, cwd=tmp_path, timeout=600,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr.decode(errors="replace")
        assert b"Traceback" not in run.stderr
        found = json.loads(run.stdout)
        assert found["results"][0]["source"] == "caf\\xe9.txt"
        assert "\ufffd" in found["query"] or query == b"Bishkek cafe"


def test_a_corpus_nested_deeper_than_python_recursion(tmp_path: Path):
    corpus_dir = tmp_path / "corpus"
    folder = corpus_dir
    for _ in range(1100):  # sys.getrecursionlimit() is 1000
        folder = folder / "d"
        folder.mkdir(parents=True)
    (folder / "deep.txt").write_text("A document at the bottom of the tree.\n", encoding="utf-8")
    (corpus_dir / "top.txt").write_text("A document at the top.\n", encoding="utf-8")
    try:
        engine = Engine(corpus_dir, tmp_path / "index", HashingModel())
        engine.refresh()
        sources = list(engine.store.read_manifest().sources)
        assert sources == sorted(["d/" * 1100 + "deep.txt", "top.txt"])
    finally:  # bottom up, in a loop: shutil.rmtree (pytest's clean-up) recurses per level
        (folder / "deep.txt").unlink()
        while folder != corpus_dir:
            folder.rmdir()
            folder = folder.parent


def test_a_skipped_binary_file_costs_one_stat_per_query(seeds: Path, tmp_path, monkeypatch):
    """A 3 GB binary file named .txt (sparse here) was hashed in full on every query (4.1 s
    per search). The sniff reads its first bytes once; after that, while its stat stamp
    holds, it is skipped unopened, by every new process, with its warning each time."""
    big = seeds / "backup.txt"
    with big.open("wb") as handle:
        handle.truncate(3 << 30)
    monkeypatch.setattr(corpus, "_RACY_NS", 0)  # the file was just made: trust its stamp
    opened: list[str] = []
    real_open = corpus.open_regular

    def counting_open(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(corpus, "open_regular", counting_open)
    for query in range(3):
        engine = Engine(seeds, tmp_path / "index", HashingModel())  # a new process each time
        response = engine.search("railway", k=3)
        assert "skipping backup.txt: a binary file" in response.warnings
        assert opened.count("backup.txt") == 1, (query, opened)
    os.utime(big, (1, 1))  # changed: sniffed again, once
    Engine(seeds, tmp_path / "index", HashingModel()).search("railway", k=3)
    assert opened.count("backup.txt") == 2
