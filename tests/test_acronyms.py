"""Acronyms: kept whole, dotted spellings joined, corpus-defined long forms both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from diplosearch.acronyms import acronyms, definitions, join_dotted
from diplosearch.engine import Engine
from diplosearch.lexical import parse_query
from tests.fakes import HashingModel


def test_dotted_acronyms_are_joined_and_capitals_kept():
    assert join_dotted("The U.S.S.R. and the U.S. met the E.U.") == "The USSR and the US met the EU"
    assert acronyms("NATO, the WHO and 600 MPs met G20 leaders; A.T. said OK.") == [
        "NATO", "WHO", "MP", "G20", "AT", "OK",
    ]  # fmt: skip
    assert acronyms("Who said nato? Not I.") == []


def test_definitions_are_mined_with_the_schwartz_hearst_match():
    found = definitions([
        "Leaders of the Eurasian Economic Union (EEU) met.",
        "The Strategic Arms Limitation Talks (SALT) resumed; the EEU grew.",
        "the Shanghai Cooperation Organisation (SCO) summit",
        "He was late (again) and tired (NB).",
    ])  # fmt: skip
    assert found == {
        "EEU": "Eurasian Economic Union",
        "SALT": "Strategic Arms Limitation Talks",
        "SCO": "Shanghai Cooperation Organisation",
    }


def test_query_acronyms_are_read_in_capitals_only():
    assert parse_query("WHO funding").acronyms == ("WHO",)
    assert parse_query("who said it").acronyms == ()
    assert parse_query("the U.S.S.R. in 1980").acronyms == ("USSR",)


CORPUS = {
    "define.txt": "Officials praised the World Health Organization (WHO) for its vaccine work.\n\n"
    "Founding members signed the Eurasian Economic Union (EEU) treaty in Astana.",
    "long.txt": "Ministers said the Eurasian Economic Union would lower tariffs on grain.",
    "short.txt": "EEU members agreed on a common electricity market.",
    "who.txt": "Who said it first is unclear, and who will pay is unknown.\n\n"
    "The delegation asked who would chair the next session of talks.",
    "salt.txt": "Farmers cut salt exports after the drought.\n\n"
    "Negotiators returned to the SALT table in Geneva.",
    "ussr.txt": "Trade with the U.S.S.R. grew in the 1970s.",
    "ussr2.txt": "The USSR opened new consulates.",
}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in CORPUS.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    return Engine(folder, tmp_path / "index", HashingModel())


def lexical(engine: Engine, query: str) -> list[str]:
    return [r.source for r in engine.search(query, k=10, mode="lexical").results]


def test_an_acronym_is_not_a_common_word(engine: Engine):
    assert lexical(engine, "WHO") == ["define.txt"]  # not the "who" of who.txt
    assert lexical(engine, "SALT")[0] == "salt.txt"
    top = engine.search("SALT", k=1, mode="lexical").results[0]
    assert "SALT table" in top.text  # the acronym's passage outranks the mineral's


def test_dotted_and_undotted_spellings_meet(engine: Engine):
    assert set(lexical(engine, "U.S.S.R.")) == {"ussr.txt", "ussr2.txt"}
    assert set(lexical(engine, "USSR")) == {"ussr.txt", "ussr2.txt"}


def test_a_corpus_defined_acronym_finds_its_long_form_and_back(engine: Engine):
    assert "long.txt" in lexical(engine, "EEU")  # never says "EEU"
    assert "short.txt" in lexical(engine, "Eurasian Economic Union")  # never spells it out
    manifest = engine.store.read_manifest()
    assert manifest.acronyms["EEU"] == "Eurasian Economic Union"  # stored in the generation
    assert manifest.acronyms["WHO"] == "World Health Organization"
