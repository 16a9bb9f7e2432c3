"""Cache, split, normalisation and augmentation of the device-resident data."""

import pytest
import torch

import lenet.data as data_mod
from lenet.data import augment_batch, channel_stats, load_dataset, load_raw, split_indices
from tests.synthetic import tar_gz, write_python_batches


@pytest.fixture
def small_archive(tmp_path):
    return tar_gz(write_python_batches(tmp_path / "src", n_per_class=20, test_per_class=5), tmp_path / "c.tar.gz")


def test_second_load_comes_from_the_cache(small_archive, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load_raw(small_archive, cache)
    assert len(list(cache.glob("cifar10-*.pt"))) == 1

    def fail(_):
        raise AssertionError("the source was decoded again")

    monkeypatch.setattr(data_mod, "read_source", fail)
    second = load_raw(small_archive, cache)
    assert torch.equal(first.raw.train_x, second.raw.train_x)
    assert second.checksum == first.checksum


def test_changed_source_is_decoded_again(tmp_path):
    cache = tmp_path / "cache"
    a = tar_gz(write_python_batches(tmp_path / "a", n_per_class=2, test_per_class=1), tmp_path / "a.tar.gz")
    b = tar_gz(write_python_batches(tmp_path / "b", n_per_class=3, test_per_class=1), tmp_path / "b.tar.gz")
    assert len(load_raw(a, cache).raw.train_x) == 20
    assert len(load_raw(b, cache).raw.train_x) == 30
    assert len(list(cache.glob("cifar10-*.pt"))) == 2


def test_corrupt_cache_is_rebuilt_not_used(small_archive, tmp_path):
    cache = tmp_path / "cache"
    good = load_raw(small_archive, cache)
    (cache_file,) = cache.glob("cifar10-*.pt")
    cache_file.write_bytes(cache_file.read_bytes()[:1000])  # a torn write
    again = load_raw(small_archive, cache)
    assert torch.equal(again.raw.train_x, good.raw.train_x)
    assert cache_file.stat().st_size > 1000  # rewritten whole


def test_failed_cache_write_leaves_no_partial_file(small_archive, tmp_path, monkeypatch):
    cache = tmp_path / "cache"

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(data_mod.torch, "save", crash)
    loaded = load_raw(small_archive, cache)  # the data still loads; only the cache is missing
    assert len(loaded.raw.train_x) == 200
    assert list(cache.iterdir()) == []


def test_split_is_stratified_disjoint_and_seeded():
    labels = torch.arange(10).repeat_interleave(100)[torch.randperm(1000, generator=torch.Generator().manual_seed(0))]
    train_idx, val_idx = split_indices(labels, 200, seed=3)
    assert len(train_idx) == 800 and len(val_idx) == 200
    assert set(train_idx.tolist()).isdisjoint(val_idx.tolist())
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(1000))
    assert torch.bincount(labels[val_idx]).tolist() == [20] * 10
    again, _ = split_indices(labels, 200, seed=3)
    other, _ = split_indices(labels, 200, seed=4)
    assert torch.equal(train_idx, again) and not torch.equal(train_idx, other)


def test_split_size_out_of_range():
    with pytest.raises(ValueError, match="validation size"):
        split_indices(torch.zeros(10, dtype=torch.long), 10, 0)


def test_channel_stats_exact():
    x = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    mean, std = channel_stats(x)
    ref = x.double().div(255)
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), ref.mean(dim=(0, 2, 3)))
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), ref.std(dim=(0, 2, 3), unbiased=False))


def test_device_data_is_normalised_by_the_training_split(synthetic_data):
    d = synthetic_data
    assert d.train_x.shape == (1600, 3, 32, 32) and d.val_x.shape == (400, 3, 32, 32)
    assert d.test_x.shape == (300, 3, 32, 32)
    assert d.train_x.is_contiguous(memory_format=torch.channels_last)
    per_channel_mean = d.train_x.mean(dim=(0, 2, 3))
    per_channel_std = d.train_x.std(dim=(0, 2, 3))
    assert torch.allclose(per_channel_mean, torch.zeros(3), atol=1e-4)
    assert torch.allclose(per_channel_std, torch.ones(3), atol=1e-3)
    assert torch.bincount(d.val_y).tolist() == [40] * 10


def test_resident_copy_is_shared_within_a_process(synthetic_archive, tmp_path):
    a = load_dataset(synthetic_archive, "cpu", val_size=400, cache_dir=tmp_path)
    b = load_dataset(synthetic_archive, "cpu", val_size=400, cache_dir=tmp_path)
    c = load_dataset(synthetic_archive, "cpu", val_size=500, cache_dir=tmp_path)
    assert a is b and c is not a


def test_data_path_from_environment(synthetic_archive, tmp_path, monkeypatch):
    monkeypatch.setenv("LENET_DATA", str(synthetic_archive))
    assert load_raw(None, tmp_path).source == str(synthetic_archive)


def test_augment_flips_and_shifts_within_padding():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    only_flips = augment_batch(x, g, pad=0)
    for i in range(2):
        assert torch.equal(only_flips[i], x[i]) or torch.equal(only_flips[i], x[i].flip(-1))
    shifted = augment_batch(x, torch.Generator().manual_seed(1), pad=4)
    assert shifted.shape == x.shape
    # every non-zero pixel of a crop is a pixel of the (possibly flipped) source image
    for i in range(2):
        values = set(shifted[i][shifted[i] != 0].tolist())
        assert values <= set(x[i].flatten().tolist())


def test_augment_varies_across_images_and_is_seeded():
    x = torch.randn(64, 3, 32, 32)
    a = augment_batch(x, torch.Generator().manual_seed(5))
    b = augment_batch(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    changed = [(not torch.equal(a[i], x[i])) for i in range(64)]
    assert 40 < sum(changed) <= 64  # 1 in 162 crop/flip choices is the identity
