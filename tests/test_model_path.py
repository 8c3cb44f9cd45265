"""``diplosearch index --model PATH``: a sentence-transformers model from a folder on disk.

A tiny randomly initialised BERT (32-d, one layer, the shipped model's word pieces) is
made in a temporary folder, never downloaded: the point is that the folder's model is
the one recorded, embedded with and queried with, not what it finds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from diplosearch.cli import cli
from diplosearch.models import DEFAULT_MODEL, MiniLM
from diplosearch.store import IndexStore
from diplosearch.store.records import Manifest
from tests.conftest import heavy_imports_of_a_search

DOCUMENTS = {
    "harbour.txt": "The port authority opened a new container terminal on the northern shore.",
    "treaty.txt": "Both ministers signed a water-sharing treaty for the river basin in March.",
    "summit.txt": "Leaders at the summit agreed to meet again next year to review trade quotas.",
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence-transformers folder (Transformer + mean Pooling) of a random 32-d BERT."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HF_HUB_OFFLINE", "1")
        env.setenv("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers import BertConfig, BertModel, BertTokenizerFast

        try:
            from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
        except ImportError:  # sentence-transformers before 6
            from sentence_transformers.models import Pooling, Transformer

        root = tmp_path_factory.mktemp("models")
        tokenizer = BertTokenizerFast.from_pretrained(str(MiniLM().folder))
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=37,
            max_position_embeddings=128,
        )
        torch.manual_seed(0)
        BertModel(config).save_pretrained(root / "bert")
        tokenizer.save_pretrained(root / "bert")
        modules = [Transformer(str(root / "bert"), max_seq_length=64), Pooling(32, "mean")]
        SentenceTransformer(modules=modules, device="cpu").save(str(root / "tiny"))
    return root / "tiny"


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, Path]:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, text in DOCUMENTS.items():
        (seeds / name).write_text(text + "\n", encoding="utf-8")
    return seeds, tmp_path / "index"


def run(corpus: tuple[Path, Path], *args: str) -> Result:
    seeds, index = corpus
    return CliRunner().invoke(cli, [*args, "--seeds", str(seeds), "--index", str(index)])


def succeeds(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def one_line_error(result: Result, code: int = 8) -> str:
    """The single ``diplosearch: error:`` line of a failed command (no traceback)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diplosearch: error: "), result.stderr
    return lines[0]


def manifest(corpus: tuple[Path, Path]) -> Manifest:
    return IndexStore(corpus[1]).read_manifest()


def test_index_help_names_the_option_and_the_page():
    shown = CliRunner().invoke(cli, ["index", "--help"]).stdout
    assert "--model PATH" in shown and "docs/models.md" in shown


def test_index_records_the_model_folder_and_searches_use_it(tiny_model: Path, corpus):
    succeeds(run(corpus, "index", "--model", str(tiny_model)))
    built = manifest(corpus)
    assert built.model == str(tiny_model.resolve())
    assert built.dimension == 32
    assert built.model_fingerprint == MiniLM(tiny_model).fingerprint()
    assert built.encoder.startswith("tiny-")
    meta = json.loads((corpus[1] / "encoders" / built.encoder / "encoder.json").read_text())
    assert (meta["model"], meta["dimension"], meta["max_seq_length"]) == (built.model, 32, 64)

    # A document's own text is its nearest passage only if the query is embedded by
    # the model that embedded the passages (a random one: nothing else agrees with it).
    for name, text in DOCUMENTS.items():
        found = succeeds(run(corpus, "search", text, "--mode", "dense", "--json", "-k", "1"))
        assert json.loads(found.stdout)["results"][0]["source"] == name
        assert found.stderr == ""  # no rebuild, no warning
    status = json.loads(succeeds(run(corpus, "status", "--json")).stdout)
    assert (status["model"], status["dimension"], status["fresh"]) == (built.model, 32, True)
    shown = succeeds(run(corpus, "show", "treaty.txt", "1", "--json"))
    assert "water-sharing treaty" in shown.stdout
    # A plain refresh keeps the index's model.
    assert "index is up to date" in succeeds(run(corpus, "index")).stderr
    after = manifest(corpus)
    assert (after.generation, after.model) == (built.generation, built.model)


def test_a_query_with_a_model_folder_never_imports_torch(tiny_model: Path, corpus):
    succeeds(run(corpus, "index", "--model", str(tiny_model)))
    seeds, index = corpus
    assert heavy_imports_of_a_search(seeds, index, "river treaty") == []


def test_changing_the_model_rebuilds_and_each_model_keeps_its_vectors(tiny_model: Path, corpus):
    succeeds(run(corpus, "index", "--model", str(tiny_model)))
    tiny = manifest(corpus)
    back = succeeds(run(corpus, "index", "--model", "default"))
    assert "index was built with" in back.stderr  # the reason of the rebuild
    shipped = manifest(corpus)
    assert (shipped.model, shipped.dimension) == (DEFAULT_MODEL, 384)
    assert shipped.generation != tiny.generation
    succeeds(run(corpus, "search", "river treaty", "--json"))
    assert manifest(corpus).generation == shipped.generation
    # Back to the folder: a rebuild, with every vector from the embedding cache.
    again = succeeds(run(corpus, "index", "--model", str(tiny_model)))
    assert " 0 embedded" in again.stderr
    assert (manifest(corpus).model, manifest(corpus).dimension) == (tiny.model, 32)


def _copy_with(tiny_model: Path, target: Path, file: str, change: dict) -> Path:
    shutil.copytree(tiny_model, target)
    data = json.loads((target / file).read_text())
    if isinstance(data, list):
        data.append(change)
    else:
        data.update(change)
    (target / file).write_text(json.dumps(data))
    return target


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("missing", "no model folder"),
        ("file", "is not a folder"),
        ("plain transformers folder", "not a sentence-transformers model folder (no modules.json)"),
        ("empty folder", "not a sentence-transformers model folder"),
        ("cls pooling", "mean pooling only"),
        ("dense layer", "Transformer + Pooling + Dense"),
        ("broken modules.json", "cannot read the model"),
    ],
)
def test_bad_model_paths_are_one_line_errors(tiny_model: Path, corpus, tmp_path, case, fragment):
    path = tmp_path / "model"
    if case == "file":
        path.write_text("not a model\n")
    elif case == "plain transformers folder":
        path = tiny_model.parent / "bert"  # config, weights and tokenizer, no modules.json
    elif case == "empty folder":
        path.mkdir()
    elif case == "cls pooling":
        _copy_with(tiny_model, path, "1_Pooling/config.json", {"pooling_mode": "cls"})
    elif case == "dense layer":
        dense = {"idx": 2, "name": "2", "path": "2_Dense", "type": "models.Dense"}
        _copy_with(tiny_model, path, "modules.json", dense)
    elif case == "broken modules.json":
        shutil.copytree(tiny_model, path)
        (path / "modules.json").write_text("[{")
    error = one_line_error(run(corpus, "index", "--model", str(path)))
    assert fragment in error
    assert not corpus[1].exists() or IndexStore(corpus[1]).current() is None


def test_a_recorded_model_folder_that_is_gone_is_one_line_error(tiny_model: Path, corpus, tmp_path):
    moved = tmp_path / "models" / "tiny"
    shutil.copytree(tiny_model, moved)
    succeeds(run(corpus, "index", "--model", str(moved)))
    built = manifest(corpus)
    moved.rename(tmp_path / "models" / "elsewhere")
    for args in (("search", "river treaty"), ("status",), ("show", "treaty.txt", "1"), ("index",)):
        error = one_line_error(run(corpus, *args))
        assert f"no model folder {moved}" in error, error
        assert "`diplosearch index --model PATH`" in error
        assert "`diplosearch index --model default`" in error
    assert manifest(corpus).generation == built.generation  # nothing rebuilt by default
    # The advice works: the model where it is now.
    succeeds(run(corpus, "index", "--model", str(tmp_path / "models" / "elsewhere")))
    assert manifest(corpus).model == str((tmp_path / "models" / "elsewhere").resolve())
    succeeds(run(corpus, "search", "river treaty", "--json"))
