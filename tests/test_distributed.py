"""The Ray build equals a local build: same chunk ids, same vectors (to 1e-5).

Runs against a local Ray instance started on this machine, with the real model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from diplosearch.cli import cli
from diplosearch.models import DEFAULT_MODEL
from diplosearch.store import IndexStore
from tests.conftest import SEEDS


def test_ray_build_equals_local_build(tmp_path: Path, real_index: tuple[Path, Path]):
    _, local_root = real_index
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    result = CliRunner().invoke(
        cli, ["index", "--ray", "--seeds", str(seeds), "--index", str(tmp_path / "index")]
    )
    assert result.exit_code == 0, result.output
    assert "embedded" in result.output

    local = IndexStore(local_root).load(DEFAULT_MODEL, 384)
    ray = IndexStore(tmp_path / "index").load(DEFAULT_MODEL, 384)
    assert [c.id for c in ray.chunks] == [c.id for c in local.chunks]
    assert ray.manifest.sources == local.manifest.sources
    assert ray.manifest.index_type == local.manifest.index_type
    n = local.faiss_index.ntotal
    difference = ray.faiss_index.reconstruct_n(0, n) - local.faiss_index.reconstruct_n(0, n)
    assert n > 150 and np.abs(difference).max() < 1e-5
    assert ray.sentence_vectors.shape == local.sentence_vectors.shape
    assert np.abs(ray.sentence_vectors - local.sentence_vectors).max() < 1e-5


def test_ray_missing_cluster_is_one_line_error(tmp_path: Path):
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    index = tmp_path / "index"
    address = "ray://127.0.0.1:1"
    arguments = ["index", "--ray", address, "--seeds", str(seeds), "--index", str(index)]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code != 0
    assert "Ray" in result.output and "Traceback" not in result.output
    assert not (index / "CURRENT").exists()
