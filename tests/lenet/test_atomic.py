"""atomic_write: durable (fsync of the file and its folder), no temporary file outliving its
writer (any exception, Ctrl-C, SIGKILL), and a full disk refused in one line naming the path."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import lenet.atomic as atomic_mod
from lenet.atomic import TEMP_PREFIX, atomic_write, remove_stale_temporaries
from lenet.data import load_raw
from lenet.errors import DiskFullError, InputError
from tests.synthetic import tar_gz, write_python_batches
from tests.tmpfs import fill, small_tmpfs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_archive(tmp_path):
    return tar_gz(write_python_batches(tmp_path / "src", n_per_class=20, test_per_class=5), tmp_path / "c.tar.gz")


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


def test_the_file_is_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(atomic_mod.os, "fsync", fsync)
    monkeypatch.setattr(atomic_mod.os, "replace", replace)
    atomic_write(tmp_path / "a.json", lambda fh: fh.write(b"{}"))
    assert events == ["fsync file", "rename", "fsync folder"]
    assert (tmp_path / "a.json").read_bytes() == b"{}"


@pytest.mark.parametrize("refusal", ["open", "fsync"])
def test_a_folder_that_cannot_be_fsynced_is_skipped_silently(tmp_path, monkeypatch, refusal):
    """As on Windows (a folder cannot be opened) or file systems without directory fsync (EINVAL)."""
    real_open, real_fsync = os.open, os.fsync

    def open_(path, flags, *args, **kwargs):
        if refusal == "open" and Path(path) == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    def fsync(fd):
        if refusal == "fsync" and stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(atomic_mod.os, "open", open_)
    monkeypatch.setattr(atomic_mod.os, "fsync", fsync)
    atomic_write(tmp_path / "a.txt", lambda fh: fh.write(b"new"))
    assert (tmp_path / "a.txt").read_bytes() == b"new" and _temporaries(tmp_path) == []


@pytest.mark.parametrize(
    "exc", [ValueError("bad"), OSError(errno.EIO, "I/O error"), KeyboardInterrupt(), SystemExit(3)]
)
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, exc):
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")

    def write(fh):
        fh.write(b"half" * 1000)
        fh.flush()
        assert _temporaries(tmp_path)  # the temporary file is there while the write runs
        raise exc

    with pytest.raises(type(exc)):
        atomic_write(target, write)
    assert target.read_bytes() == b"old"
    assert _temporaries(tmp_path) == []


def test_the_temporary_name_says_which_process_on_which_host_wrote_it(tmp_path):
    names = []
    atomic_write(tmp_path / "a.pt", lambda fh: names.extend(_temporaries(tmp_path)))
    match = atomic_mod._OURS.match(names[0])
    assert match and int(match["pid"]) == os.getpid() and match["host"] == atomic_mod._host()
    assert names[0].endswith(".pt")


_KILLED_WRITER = """
import sys, time
from pathlib import Path
from lenet.atomic import atomic_write

def write(fh):
    fh.write(b"x" * 1_000_000)
    fh.flush()
    print("writing", flush=True)
    time.sleep(120)

atomic_write(Path(sys.argv[1]), write)
"""


def test_a_decode_killed_mid_write_leaves_a_temporary_that_the_next_load_removes(small_archive, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(cache / "cifar10-0123456789abcdef01234567-v1.pt")],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        (leftover,) = _temporaries(cache)
        assert (cache / leftover).stat().st_size == 1_000_000
        # A live writer's temporary file is not stale: a concurrent load leaves it alone.
        assert remove_stale_temporaries(cache) == [] and _temporaries(cache) == [leftover]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)  # reaped: a zombie would still count as running
    assert proc.returncode == -signal.SIGKILL
    assert _temporaries(cache) == [leftover]  # SIGKILL: nothing could remove it

    loaded = load_raw(small_archive, cache)
    assert len(loaded.raw.train_x) == 200
    assert _temporaries(cache) == []
    assert len(list(cache.glob("cifar10-*.pt"))) == 1  # the load's own cache, whole


def test_which_temporaries_are_stale(tmp_path):
    host = atomic_mod._host()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    files = {
        "mine": f"{TEMP_PREFIX}{os.getpid()}@{host}-abc12345.pt",  # this process: alive
        "dead": f"{TEMP_PREFIX}{dead_pid}@{host}-abc12345.pt",  # its writer exited
        "other host": f"{TEMP_PREFIX}{dead_pid}@not-{host}-abc12345.pt",  # cannot tell: kept while young
        "old naming": f"{TEMP_PREFIX}k2j3h4g5.pt",  # mkstemp's name before pids were in it
        "old other host": f"{TEMP_PREFIX}{os.getpid()}@not-{host}-zzz12345.pt",
        "not ours": "cifar10-0123-v1.pt",
    }
    for name in files.values():
        (tmp_path / name).write_bytes(b"x")
    hour_ago = time.time() - 3700
    for key in ("old naming", "old other host"):
        os.utime(tmp_path / files[key], (hour_ago, hour_ago))
    old_cache = tmp_path / "cifar10-old-v1.pt"  # an old cache file is not a temporary one
    old_cache.write_bytes(b"x")
    os.utime(old_cache, (hour_ago, hour_ago))

    removed = {p.name for p in remove_stale_temporaries(tmp_path)}
    assert removed == {files["dead"], files["old naming"], files["old other host"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [files["mine"], files["other host"], files["not ours"], old_cache.name]
    )
    assert remove_stale_temporaries(tmp_path / "missing") == []


# A full disk, on a real (small) file system.


def test_a_write_larger_than_the_disk_is_refused_naming_it(tmp_path):
    with small_tmpfs(tmp_path / "disk") as disk:
        target = disk / "best.json"
        target.write_bytes(b"old")
        with pytest.raises(DiskFullError) as refused:
            atomic_write(target, lambda fh: fh.write(b"x" * 2_000_000))
        assert isinstance(refused.value, InputError)  # the command line: one line, exit code 2
        assert str(refused.value) == f"no space left on the device holding {target}"
        assert refused.value.path == target
        assert target.read_bytes() == b"old" and _temporaries(disk) == []
        atomic_write(target, lambda fh: fh.write(b"new"))  # the space the temporary held is free again
        assert target.read_bytes() == b"new"


def test_torch_save_on_a_full_disk_is_refused_too(tmp_path):
    """torch.save turns ENOSPC into a RuntimeError ("unexpected pos"): still a full disk."""
    with small_tmpfs(tmp_path / "disk") as disk:
        target = disk / "model.pt"
        with pytest.raises(DiskFullError, match="no space left on the device holding"):
            atomic_write(target, lambda fh: torch.save(torch.zeros(1_000_000), fh))
        assert list(disk.iterdir()) == []


def test_a_full_cache_disk_is_refused_in_one_line_and_leaves_nothing(small_archive, tmp_path):
    with small_tmpfs(tmp_path / "disk") as disk:
        filler = fill(disk)
        cache = disk / "cache"
        with pytest.raises(DiskFullError) as refused:
            load_raw(small_archive, cache)
        message = str(refused.value)
        assert message.startswith(f"no space left on the device holding {cache}/cifar10-") and "LENET_CACHE" in message
        assert "\n" not in message
        assert _temporaries(cache) == []
        filler.unlink()
        assert len(load_raw(small_archive, cache).raw.train_x) == 200
        assert len(list(cache.glob("cifar10-*.pt"))) == 1 and _temporaries(cache) == []
