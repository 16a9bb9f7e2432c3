"""Each kind of source decodes to the same arrays; bad sources give one clear error."""

import pytest
import torch

from lenet.sources import CLASSES, DataError, read_source, source_key
from tests.synthetic import make_images, tar_gz, write_image_folder, write_python_batches, zip_dir


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("img") / "cifar10-images")


def _assert_same(a, b):
    for name in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_python_batches_directory_tarball_and_parent(tmp_path):
    batches = write_python_batches(tmp_path / "src", n_per_class=5, test_per_class=2)
    raw = read_source(batches)
    assert raw.train_x.shape == (50, 3, 32, 32) and raw.train_x.dtype == torch.uint8
    assert raw.test_x.shape == (20, 3, 32, 32)
    x, y = make_images(5, seed=1)
    assert torch.equal(raw.train_x, torch.from_numpy(x)) and torch.equal(raw.train_y, torch.from_numpy(y))
    _assert_same(raw, read_source(tmp_path / "src"))  # parent of cifar-10-batches-py
    _assert_same(raw, read_source(tar_gz(batches, tmp_path / "cifar-10-python.tar.gz")))


def test_image_folder_directory_tar_and_zip_agree(image_folder, tmp_path):
    raw = read_source(image_folder)
    assert raw.classes == CLASSES
    assert raw.train_x.shape == (60, 3, 32, 32) and raw.test_x.shape == (20, 3, 32, 32)
    assert torch.bincount(raw.train_y).tolist() == [6] * 10
    _assert_same(raw, read_source(tar_gz(image_folder, tmp_path / "imgs.tar.gz")))
    _assert_same(raw, read_source(zip_dir(image_folder, tmp_path / "imgs.zip")))


def test_image_folder_pixels_match_what_was_written(image_folder):
    raw = read_source(image_folder)
    x, y = make_images(6, seed=1)
    first_airplane = torch.from_numpy(x[y == 0][0])
    assert torch.equal(raw.train_x[0], first_airplane)  # sorted classes, sorted file names


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_source(tmp_path / "nope.tar.gz")


def test_corrupt_archive(tmp_path):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(b"\x1f\x8b this is not really gzip" * 10)
    with pytest.raises(DataError, match="corrupt or unreadable"):
        read_source(bad)


def test_truncated_archive(tmp_path, image_folder):
    good = tar_gz(image_folder, tmp_path / "good.tar.gz").read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=str(cut)):
        read_source(cut)


def test_wrong_layout(tmp_path):
    (tmp_path / "something").mkdir()
    (tmp_path / "something" / "a.txt").write_text("hi")
    with pytest.raises(DataError, match="neither cifar-10-batches-py nor an image folder"):
        read_source(tmp_path)


def test_unknown_file_kind(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("1,2,3")
    with pytest.raises(DataError, match="not a CIFAR-10 source"):
        read_source(f)


def test_wrong_number_of_classes(tmp_path):
    root = write_image_folder(tmp_path / "seven", n_per_class=1, test_per_class=1, classes=CLASSES[:7])
    with pytest.raises(DataError, match="7 class folders.*needs 10"):
        read_source(root)


def test_wrong_image_size(tmp_path):
    from PIL import Image

    root = write_image_folder(tmp_path / "imgs", n_per_class=1, test_per_class=1)
    Image.new("RGB", (40, 40)).save(root / "train" / "cat" / "0000.png")
    with pytest.raises(DataError, match=r"0000.png is 40x40, expected 32x32"):
        read_source(root)


def test_undecodable_image(tmp_path):
    root = write_image_folder(tmp_path / "imgs", n_per_class=1, test_per_class=1)
    (root / "test" / "dog" / "0000.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="0000.png is not a readable image"):
        read_source(root)


def test_missing_python_batch(tmp_path):
    batches = write_python_batches(tmp_path / "src", n_per_class=2, test_per_class=1)
    (batches / "data_batch_3").unlink()
    with pytest.raises(DataError, match="lacks CIFAR-10 batches data_batch_3"):
        read_source(batches)


def test_source_key_follows_content(tmp_path):
    f = tmp_path / "a.tar.gz"
    f.write_bytes(b"one")
    k1 = source_key(f)
    f.write_bytes(b"two")
    assert source_key(f) != k1
    f.write_bytes(b"one")
    assert source_key(f) == k1


class _Evil:
    """A pickle that runs code when loaded: here it would create a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_batch_that_would_run_code_is_refused_before_it_runs(tmp_path, protocol):
    import pickle

    batches = write_python_batches(tmp_path / "src", n_per_class=2, test_per_class=1)
    marker = tmp_path / "ran"
    (batches / "data_batch_3").write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": [0]}, protocol=protocol))
    with pytest.raises(DataError, match=r"data_batch_3 is not a CIFAR-10 python batch: it asks for [a-z.]*open"):
        read_source(tar_gz(batches, tmp_path / "cifar-10-python.tar.gz"))
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
def test_batches_of_any_protocol_still_load(tmp_path, protocol):
    import pickle

    import numpy as np

    batches = write_python_batches(tmp_path / "src", n_per_class=2, test_per_class=1)
    x, y = make_images(2, seed=1)
    for i, (px, py) in enumerate(zip(np.array_split(x, 5), np.array_split(y, 5)), start=1):
        doc = {b"batch_label": b"training batch", b"data": px.reshape(len(px), -1), b"labels": py.tolist()}
        (batches / f"data_batch_{i}").write_bytes(pickle.dumps(doc, protocol=protocol))
    assert torch.equal(read_source(batches).train_x, torch.from_numpy(x))
