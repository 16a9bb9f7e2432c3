"""The engine on the real CIFAR-10 archive (skipped where ../shared/data lacks it)."""

import pytest
import torch

import lenet.data as data_mod
from lenet.config import TrainConfig
from lenet.data import load_dataset, load_raw
from lenet.sources import CLASSES
from lenet.train import train

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def real(real_archive, real_cache):
    return load_dataset(real_archive, "cpu", cache_dir=real_cache)


def test_real_archive_sizes_and_classes(real_archive, real_cache):
    raw = load_raw(real_archive, real_cache).raw
    assert raw.classes == CLASSES
    assert raw.train_x.shape == (50_000, 3, 32, 32) and raw.test_x.shape == (10_000, 3, 32, 32)
    assert torch.bincount(raw.train_y).tolist() == [5000] * 10
    assert torch.bincount(raw.test_y).tolist() == [1000] * 10


def test_real_split_is_stratified_and_disjoint(real):
    assert len(real.train_x) == 45_000 and len(real.val_x) == 5_000
    assert torch.bincount(real.val_y).tolist() == [500] * 10
    assert torch.bincount(real.train_y).tolist() == [4500] * 10
    # no validation image is also a training image (pixel-wise, after normalisation)
    train_keys = {hash(x.numpy().tobytes()) for x in real.train_x[:, :, 16, :].contiguous()}
    val_keys = {hash(x.numpy().tobytes()) for x in real.val_x[:, :, 16, :].contiguous()}
    assert len(train_keys & val_keys) < 5  # CIFAR-10 itself holds a few near-duplicate rows


def test_real_normalisation_uses_cifar10_statistics(real):
    # CIFAR-10's well-known channel means, shifted slightly by the JPEG re-encoding
    assert real.mean == pytest.approx((0.491, 0.482, 0.447), abs=0.01)
    assert real.std == pytest.approx((0.247, 0.243, 0.261), abs=0.01)


def test_real_cache_is_reused(real_archive, real_cache, monkeypatch):
    load_raw(real_archive, real_cache)

    def fail(_):
        raise AssertionError("decoded the archive again")

    monkeypatch.setattr(data_mod, "read_source", fail)
    assert len(load_raw(real_archive, real_cache).raw.train_x) == 50_000


def test_one_epoch_on_real_data_reaches_40_percent(real):
    result = train(TrainConfig(lr=0.05, momentum=0.9, batch_size=128, max_epochs=1), real)
    assert result.status == "completed"
    assert result.history[0].val_accuracy >= 0.40
