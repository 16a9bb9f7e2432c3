"""Hostile sources in the real formats are refused, on what they declare, before they are read
whole: huge members, decompression bombs, images that declare a huge size, headers that lie."""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import tarfile
import time
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image

import lenet.sources as sources
from lenet.sources import DataError, read_source
from tests.synthetic import tar_gz, write_image_folder, write_python_batches, zip_dir

MIB = 1 << 20


def refused(path: Path, pattern: str, seconds: float = 2.0, peak_mib: float = 32.0) -> DataError:
    """read_source(path) raises a DataError matching `pattern`, within `seconds` and with at most
    `peak_mib` MiB of Python memory at its peak: the bomb was not inflated to be refused."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DataError, match=pattern) as caught:
            read_source(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / MIB
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s to refuse"
    assert peak < peak_mib, f"peaked at {peak:.1f} MiB to refuse"
    assert "\n" not in str(caught.value)
    return caught.value


def write_gzip_bomb(dest: Path, head: bytes, zeros_mib: int, tail: bytes = b"") -> Path:
    """A valid gzip file of `head`, `zeros_mib` MiB of zeros, then `tail`, in about 1 KB per MiB:
    one compressed MiB of zeros written again and again (a full flush makes each copy the same)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MIB)
    crc = zlib.crc32(head)
    with dest.open("wb") as fh:
        fh.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # gzip header: deflate, no name, unix
        fh.write(comp.compress(head) + comp.flush(zlib.Z_FULL_FLUSH))
        block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
        for _ in range(zeros_mib):
            fh.write(block)
            crc = zlib.crc32(zeros, crc)
        fh.write(comp.compress(tail) + comp.flush())
        crc = zlib.crc32(tail, crc)
        fh.write(struct.pack("<II", crc, (len(head) + zeros_mib * MIB + len(tail)) & 0xFFFFFFFF))
    return dest


def tar_header(name: str, size: int, fmt: int = tarfile.GNU_FORMAT) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(fmt)


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (its pixel data is a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 97)) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real 32x32 JPEG whose frame header is rewritten to declare width x height."""
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")  # baseline frame: marker, length, precision, height, width
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _patch_central(path: Path, name: str, offset: int, fmt: str, value: int) -> None:
    """Rewrite one field of `name`'s central-directory entry (what zipfile believes of it)."""
    with zipfile.ZipFile(path) as zf:
        pos = zf.start_dir
        for info in zf.infolist():
            if info.filename == name:
                break
            pos += 46 + len(info.orig_filename.encode()) + len(info.extra) + len(info.comment)
    data = bytearray(path.read_bytes())
    assert data[pos : pos + 4] == b"PK\x01\x02"
    data[pos + offset : pos + offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("img") / "cifar10-images", n_per_class=1, test_per_class=1)


# -- members larger than any real one ---------------------------------------------------------


def test_a_gzip_bomb_batch_is_refused_on_its_declared_size(tmp_path):
    # cifar-10-python.tar.gz whose first batch inflates to 1 GiB of zeros: 1 MB on disk
    bomb = write_gzip_bomb(
        tmp_path / "cifar-10-python.tar.gz",
        tar_header("cifar-10-batches-py/data_batch_1", 1024 * MIB),
        1024,
        tail=bytes(1024),
    )
    assert bomb.stat().st_size < 2 * MIB
    refused(bomb, r"cifar-10-batches-py/data_batch_1 is 1,073,741,824 bytes, over the bound of 512 MiB on one member")


def test_a_huge_member_the_loader_would_only_walk_past_is_refused_too(tmp_path):
    # in a gzip'd tar, walking past a member inflates it: a 1 GiB "notes.bin" before the batches
    bomb = write_gzip_bomb(tmp_path / "cifar-10-python.tar.gz", tar_header("notes.bin", 1024 * MIB), 1024, bytes(1024))
    refused(bomb, r"archive .*cifar-10-python.tar.gz: notes.bin is 1,073,741,824 bytes, over the bound of 512 MiB")


class _Zeros(io.RawIOBase):
    """A stream of zeros that is never held whole."""

    def read(self, n: int = -1) -> bytes:
        return bytes(n)


def test_an_image_member_of_64_mib_of_zeros_is_refused_before_it_is_read(tmp_path, image_folder):
    with tarfile.open(tmp_path / "imgs.tar.gz", "w:gz", compresslevel=1) as tar:
        for file in sorted(image_folder.rglob("*")):
            arcname = f"cifar10-images/{file.relative_to(image_folder).as_posix()}"
            if arcname.endswith("train/cat/0000.png"):
                info = tar.gettarinfo(file, arcname)
                info.size = 64 * MIB
                tar.addfile(info, _Zeros())
            else:
                tar.add(file, arcname, recursive=False)
    refused(
        tmp_path / "imgs.tar.gz",
        r"cifar10-images/train/cat/0000.png is 67,108,864 bytes, over the bound of 1 MiB on one image",
        peak_mib=16,
    )


def test_an_oversized_image_in_a_folder_or_zip_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "imgs", n_per_class=1, test_per_class=1)
    (root / "test" / "dog" / "0000.png").write_bytes(bytes(2 * MIB))
    refused(root, r"test/dog/0000.png is 2,097,152 bytes, over the bound of 1 MiB on one image")
    refused(zip_dir(root, tmp_path / "imgs.zip"), r"zip .*: imgs/test/dog/0000.png is 2,097,152 bytes, over the bound")


def test_an_oversized_batch_in_a_directory_is_refused(tmp_path, monkeypatch):
    batches = write_python_batches(tmp_path / "src", n_per_class=2, test_per_class=1)
    monkeypatch.setattr(sources, "MEMBER_MAX_BYTES", 1000)  # the synthetic batches are ~13 KB
    refused(batches, r"data_batch_1 is [0-9,]+ bytes, over the bound of 1,000 bytes on one member")


# -- headers that understate or lie ----------------------------------------------------------


def zip_replacing(src: Path, dest: Path, name: str, zeros_mib: int) -> Path:
    """zip_dir(src, dest) with member `name` (under src.name) replaced by `zeros_mib` MiB of zeros."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(src.rglob("*")):
            arcname = f"{src.name}/{file.relative_to(src).as_posix()}"
            if file.is_file() and arcname != name:
                zf.write(file, arcname)
        with zf.open(name, "w", force_zip64=True) as fh:
            for _ in range(zeros_mib):
                fh.write(bytes(MIB))
    return dest


def test_a_zip_member_that_inflates_past_its_declared_size_is_cut_there(tmp_path, image_folder):
    name = "cifar10-images/train/cat/0000.png"
    archive = zip_replacing(image_folder, tmp_path / "imgs.zip", name, 200)  # 200 MiB of zeros, 200 KB deflated
    _patch_central(archive, name, 24, "<I", 3000)  # its directory entry now says 3,000 bytes
    refused(archive, r"corrupt or unreadable: Bad CRC-32", peak_mib=16)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ((8, "<H"), 0x1, r"zip .*: cifar10-images/train/cat/0000.png is encrypted, which no CIFAR-10 archive is"),
        ((10, "<H"), 99, r"0000.png cannot be read \(.*compression method is not supported\)"),
    ],
)
def test_a_zip_member_that_cannot_be_read_is_a_refusal(tmp_path, image_folder, field, value, message):
    archive = zip_dir(image_folder, tmp_path / "imgs.zip")
    _patch_central(archive, "cifar10-images/train/cat/0000.png", *field, value)
    refused(archive, message)


def test_a_tar_member_of_negative_size_is_refused(tmp_path):
    # tarfile reads a base-256 negative size and would walk backwards over the archive
    archive = tmp_path / "imgs.tar"
    archive.write_bytes(tar_header("train/cat/0000.png", -512) + bytes(2048))
    refused(archive, r"train/cat/0000.png declares a negative size \(-512 bytes\)")


def test_a_chain_of_extension_headers_is_refused_before_tarfile_recurses_through_it(tmp_path):
    long_name = tarfile.TarInfo("././@LongLink")
    long_name.type, long_name.size = tarfile.GNUTYPE_LONGNAME, 10
    link = long_name.tobuf(tarfile.USTAR_FORMAT) + b"a" * 10 + bytes(502)
    archive = tmp_path / "imgs.tar"
    archive.write_bytes(link * 5000 + tar_header("train/cat/0000.png", 0) + bytes(1024))  # was a RecursionError
    refused(archive, r"over 8 extension headers \(pax, GNU long names\) in a row at byte 8,192, the bound on one")


def test_a_huge_pax_header_is_refused(tmp_path):
    archive = tmp_path / "imgs.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("train/cat/0000.png")
        info.pax_headers = {"comment": "x" * (2 * MIB)}
        tar.addfile(info, io.BytesIO())
    refused(
        archive,
        r"headers \(pax, GNU long names\) in a row up to byte 0 hold 2,097,1[0-9]{2} bytes, over the bound of 1 MiB",
    )


def test_real_extension_headers_still_load(tmp_path, image_folder):
    # GNU long names and pax headers (a local one per long path, a global one) as tar writes them
    want = read_source(image_folder)
    deep = "x" * 120 + "/cifar10-images"
    for fmt, extra in ((tarfile.GNU_FORMAT, {}), (tarfile.PAX_FORMAT, {"pax_headers": {"comment": "made by hand"}})):
        archive = tmp_path / f"imgs-{fmt}.tar.gz"
        with tarfile.open(archive, "w:gz", format=fmt, **extra) as tar:
            tar.add(image_folder, arcname=deep)
        got = read_source(archive)
        assert torch.equal(got.train_x, want.train_x) and torch.equal(got.test_y, want.test_y)


# -- whole archives ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_the_total_bytes_of_an_archive_are_bounded(tmp_path, image_folder, monkeypatch, kind):
    archive = (tar_gz if kind == "tar.gz" else zip_dir)(image_folder, tmp_path / f"imgs.{kind}")
    monkeypatch.setattr(sources, "ARCHIVE_MAX_BYTES", 20_000)  # 20 PNGs of ~3 KB
    refused(archive, r"its members up to .*\.png add up to [0-9,]+ bytes uncompressed, over the bound of 20,000 bytes")


def test_the_number_of_members_of_an_archive_is_bounded(tmp_path, image_folder, monkeypatch):
    archive = tar_gz(image_folder, tmp_path / "imgs.tar.gz")
    monkeypatch.setattr(sources, "ARCHIVE_MAX_MEMBERS", 15)
    refused(archive, r"archive .*imgs.tar.gz holds over 15 members, the bound on a CIFAR-10 source")


def test_a_zip_member_whose_deflate_stream_is_corrupt_is_a_refusal(tmp_path, image_folder):
    archive = tmp_path / "imgs.zip"  # was zlib.error's traceback
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(image_folder.rglob("*.png")):
            zf.write(file, f"cifar10-images/{file.relative_to(image_folder).as_posix()}")
        info = zf.getinfo("cifar10-images/train/cat/0000.png")
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start : start + 8] = b"\xff" * 8
    archive.write_bytes(bytes(data))
    refused(archive, r"corrupt or unreadable: Error -3 while decompressing data")


def test_a_corrupt_gzip_is_refused_in_one_line(tmp_path):
    data = bytearray(tar_gz(write_image_folder(tmp_path / "imgs", 1, 1), tmp_path / "good.tar.gz").read_bytes())
    data[20:36] = bytes(range(7, 23))
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(data))
    refused(bad, r"corrupt or unreadable: file could not be opened successfully: - method gz: ReadError\('zlib error")


# -- images that declare a huge size -----------------------------------------------------------


@pytest.mark.parametrize(
    ("blob", "name", "message"),
    [
        (png_declaring(60000, 60000), "0000.png", r"0000.png declares a size far over 32x32, refused undecoded"),
        (jpeg_declaring(60000, 60000), "0000.jpg", r"0000.jpg declares a size far over 32x32, refused undecoded"),
        (png_declaring(12000, 12000), "0000.png", r"0000.png is 12000x12000, expected 32x32 \(refused undecoded\)"),
        (jpeg_declaring(40, 40), "0000.jpg", r"0000.jpg is 40x40, expected 32x32"),
    ],
)
def test_an_image_declaring_a_huge_size_is_refused_undecoded(tmp_path, blob, name, message):
    root = write_image_folder(tmp_path / "imgs", n_per_class=1, test_per_class=1)
    (root / "train" / "cat" / "0000.png").unlink()
    (root / "train" / "cat" / name).write_bytes(blob)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        refused(root, message)
        refused(tar_gz(root, tmp_path / "imgs.tar.gz"), message)
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]


def test_an_image_in_a_format_other_than_png_or_jpeg_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "imgs", n_per_class=1, test_per_class=1)
    Image.new("RGB", (32, 32)).save(root / "train" / "cat" / "0000.png", format="TIFF")
    refused(root, r"0000.png is not a readable image \(cannot identify image file")


# -- pickled batches ---------------------------------------------------------------------------


def test_a_batch_of_a_million_tiny_objects_is_refused_before_it_is_unpickled(tmp_path):
    # 512 MiB of EMPTY_LIST opcodes would deflate to ~0.5 MB and make 30 GB of lists
    batches = write_python_batches(tmp_path / "src", n_per_class=2, test_per_class=1)
    (batches / "data_batch_2").write_bytes(b"\x80\x02" + b"]" * 1_000_001 + b".")
    refused(
        tar_gz(batches, tmp_path / "cifar-10-python.tar.gz"),
        r"data_batch_2 is not a CIFAR-10 python batch: it holds over 1,000,000 pickle opcodes",
        seconds=5,
    )


def test_a_batch_that_is_not_a_pickle_at_all_is_refused(tmp_path):
    batches = write_python_batches(tmp_path / "src", n_per_class=2, test_per_class=1)
    (batches / "data_batch_2").write_bytes(bytes(1000))
    refused(batches, r"data_batch_2 is not a CIFAR-10 python batch: .*opcode")


def test_the_bounds_leave_every_real_format_a_wide_margin():
    real_batch_bytes, protocol_0_batch_bytes = 31_035_704, 185_000_000  # the release's; re-pickled as text
    assert sources.MEMBER_MAX_BYTES > 2.5 * protocol_0_batch_bytes
    assert sources.MEMBER_MAX_BYTES > 15 * real_batch_bytes
    assert sources.ARCHIVE_MAX_BYTES > 10 * (6 * real_batch_bytes) and sources.ARCHIVE_MAX_BYTES > 6 * 60_000 * 4096
    assert sources.ARCHIVE_MAX_MEMBERS > 4 * 2 * 60_023  # every image twice (macOS ._ files), and the folders
    assert sources.IMAGE_MAX_BYTES > 300 * 3 * 32 * 32  # an uncompressed RGB 32x32 image is 3 KB
    doc = {b"data": bytes(3072), b"labels": list(range(10)) * 1000, b"filenames": [b"f.png"] * 10_000}
    assert sum(1 for _ in pickletools.genops(pickle.dumps(doc, protocol=0))) * 8 < 1_000_000
