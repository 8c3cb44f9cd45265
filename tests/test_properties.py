"""Property-based tests (hypothesis): the chunker and the index parsers on arbitrary input."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from diplosearch.errors import IndexCorruptError, IndexMismatchError
from diplosearch.ingest import metadata
from diplosearch.ingest.chunker import parse_document
from diplosearch.store import IndexStore
from diplosearch.store.records import CURRENT, FORMAT_VERSION, Manifest

NEWLINES = ("\n", "\r\n", "\r")
_line_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")
lines = st.lists(
    st.one_of(
        st.text(_line_chars, max_size=60),
        st.sampled_from(
            ["", "  ", "Headline of a report", "BISHKEK, Oct. 26 (Xinhua) -- Li said."]
        ),
        st.text(st.sampled_from("ab. ,\t"), max_size=300),
    ),
    max_size=30,
)


def count(text: str) -> int:
    return len(text.split())


def furniture(body: list[str]) -> bool:
    """Lines the chunker may drop on purpose: headers, comment forms, boilerplate."""
    first = next((line for line in body if line.strip()), "")
    return metadata.parse_header(first) is not None or any(
        metadata.is_boilerplate(line) or metadata.starts_comment_form(line) for line in body
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines, st.sampled_from(NEWLINES))
@example(["00", "", "0", "", "."], "\n")  # a heading over a wordless line heads nothing
@example(["000", "", "00", "", "0", "", "A, Oct 0(0)0"], "\n")  # nor one over a report's headline
def test_chunker_properties(body: list[str], newline: str):
    text = newline.join(body)
    doc = parse_document("p.txt", text, count, 12)  # never raises
    # Deterministic, and the same whatever the line endings.
    again = parse_document("p.txt", text, count, 12)
    assert [c.id for c in doc.chunks] == [c.id for c in again.chunks]
    assert doc.chunks == parse_document("p.txt", "\n".join(body), count, 12).chunks
    # In order, within the window, and each chunk stands on the lines it cites.
    keys = [(c.paragraph, c.part) for c in doc.chunks]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for chunk in doc.chunks:
        assert 1 <= chunk.line_start <= chunk.line_end <= len(body)
        cited = " ".join(line.strip() for line in body[chunk.line_start - 1 : chunk.line_end])
        assert chunk.text and chunk.text in cited
        assert count(chunk.text) <= 12 or len(chunk.text.split()) == 1
        for start, end in chunk.sentences:
            assert 0 <= start < end <= len(chunk.text)
    # Nothing is lost: every word is in a chunk, the title or a section, unless the
    # document has furniture that is dropped on purpose.
    if not furniture(body):
        kept = " ".join([*(c.text for c in doc.chunks), doc.title or ""])
        kept += " " + " ".join(c.section or "" for c in doc.chunks)
        have = set(re.findall(r"\w+", kept))
        assert set(re.findall(r"\w+", " ".join(body))) <= have


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values.map(json.dumps), st.text(max_size=200)))
def test_manifest_parser_raises_only_typed_errors(text: str):
    with contextlib.suppress(IndexCorruptError, IndexMismatchError):
        Manifest.from_json(text, "gen-000001")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["format_version", "model", "dimension", "sources", "files", "chunks",
                     "speakers", "encoder", "created", "chunker_version", "model_fingerprint"]),
    json_values,
))  # fmt: skip
def test_manifest_parser_on_near_manifests(data: dict):
    data.setdefault("format_version", FORMAT_VERSION)
    with contextlib.suppress(IndexCorruptError, IndexMismatchError):
        Manifest.from_json(json.dumps(data), "gen-000001")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_pointer_parser_raises_only_typed_errors(tmp_path: Path, data: bytes):
    (tmp_path / CURRENT).write_bytes(data)
    with contextlib.suppress(IndexCorruptError, IndexMismatchError):
        IndexStore(tmp_path).pointer()


@pytest.mark.parametrize("newline", NEWLINES)
def test_line_numbers_for_each_newline_style(newline: str):
    text = newline.join(["Title", "", "One.", "", "", "Two.", "Three wrapped", "line."])
    doc = parse_document("n.txt", text, count, 50)
    assert [(c.line_start, c.line_end, c.text) for c in doc.chunks] == [
        (3, 3, "One."),
        (6, 8, "Two. Three wrapped line."),
    ]
