from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from lenet.clock import calibrate_clock
from lenet.data import load_dataset
from tests.search.cli_helpers import run_cli
from tests.synthetic import tar_gz, write_python_batches

SPACE = """
lr = { low = 0.005, high = 0.02 }
momentum = { low = 0.8, high = 0.95 }
[batch_size]
choices = [32, 64]
[budget]
max_epochs = 4
"""


@dataclass(frozen=True)
class Tiny:
    archive: Path
    space: Path
    clock: Path  # a step clock measured once for the session, reused by every study

    def retrain_args(self, config: Path, *extra: object) -> list[object]:
        """`train --config` on the tiny data."""
        return ["train", "--config", config, "--data", self.archive, "--val-size", "200", *extra]

    def optimize_args(self, storage: str, *extra: str) -> list[str]:
        return [
            "optimize",
            "--data",
            str(self.archive),
            "--val-size",
            "200",
            "--space",
            str(self.space),
            "--storage",
            storage,
            "--target",
            "0.6",
            "--quiet",
            "--clock-from",
            str(self.clock),
            *extra,
        ]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Tiny:
    """1,000 learnable synthetic images and a space in which most trials reach 0.6 quickly."""
    root = tmp_path_factory.mktemp("tiny")
    archive = tar_gz(write_python_batches(root / "src", n_per_class=100, test_per_class=10), root / "tiny.tar.gz")
    space = root / "space.toml"
    space.write_text(SPACE)
    data = load_dataset(archive, "cpu", val_size=200, cache_dir=root / "cache")
    clock = root / "clock.json"
    clock.write_text(json.dumps(calibrate_clock(data, [32, 64], rounds=3, block_seconds=0.02).to_dict()))
    return Tiny(archive, space, clock)


@pytest.fixture(scope="module")
def finished_study(tiny, tmp_path_factory) -> str:
    """A 6-trial study in a temporary SQLite file; returns its storage URL."""
    storage = f"sqlite:///{tmp_path_factory.mktemp('study')}/s.db"

    result = run_cli(*tiny.optimize_args(storage, "--trials", "6"))
    assert result.code == 0
    return storage


@pytest.fixture(scope="module")
def postgres_url() -> str:
    url = os.environ.get("LENET_TEST_POSTGRES")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("LENET_TEST_POSTGRES is not set; .ci/run starts PostgreSQL and sets it")
        pytest.skip("no PostgreSQL server (set LENET_TEST_POSTGRES=postgresql://user:pw@host/db)")
    return url
