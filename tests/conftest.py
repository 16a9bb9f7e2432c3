from __future__ import annotations

from pathlib import Path

import pytest

from tests.synthetic import tar_gz, write_python_batches

REAL_ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-images.tar.gz"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own data cache and no inherited LENET_DATA."""
    monkeypatch.setenv("LENET_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("LENET_DATA", raising=False)


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory) -> Path:
    """A learnable synthetic cifar-10-python.tar.gz: 2000 training and 300 test images."""
    root = tmp_path_factory.mktemp("synthetic")
    batches = write_python_batches(root / "src", n_per_class=200, test_per_class=30)
    return tar_gz(batches, root / "cifar-10-python.tar.gz")


@pytest.fixture(scope="session")
def synthetic_data(synthetic_archive, tmp_path_factory):
    """The synthetic archive resident on the CPU, 400 images held out for validation."""
    from lenet.data import load_dataset

    return load_dataset(synthetic_archive, "cpu", val_size=400, cache_dir=tmp_path_factory.mktemp("cache-syn"))


@pytest.fixture(scope="session")
def real_archive() -> Path:
    if not REAL_ARCHIVE.is_file():
        pytest.skip(f"real CIFAR-10 archive not found at {REAL_ARCHIVE}")
    return REAL_ARCHIVE


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory) -> Path:
    """One decode of the real archive per test session."""
    return tmp_path_factory.mktemp("real-cache")
