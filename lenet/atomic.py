"""Writing files so that a crash never leaves half a file under the final name.

`atomic_write` writes to a temporary file beside the target, fsyncs it, renames it into place
and fsyncs the folder, so that after a power loss the target holds either its old content or
the new one, whole. The temporary file is removed on any failure, Ctrl-C included; a process
killed with SIGKILL cannot remove it, so its name says who wrote it (`.tmp-<pid>@<host>-...`)
and `remove_stale_temporaries` lets a later run clear those whose writer is gone.

A write that fails because the device is full (ENOSPC, or EDQUOT: a quota) is turned into a
`DiskFullError` naming the path, here and only here: every file lenet-search writes goes
through `atomic_write` (exports, metrics, checkpoints, figures, reports, clocks, the data
cache), except the study's database and torchvision's download, which their libraries write.
"""

from __future__ import annotations

import errno
import io
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from lenet.errors import DiskFullError

TEMP_PREFIX = ".tmp-"
STALE_SECONDS = 3600.0  # a temporary file untouched this long is stale whoever wrote it
_FULL = {errno.ENOSPC: "no space left"}
if hasattr(errno, "EDQUOT"):
    _FULL[errno.EDQUOT] = "disk quota exceeded"
# errnos with which a platform or file system says it cannot fsync a directory
_NO_DIR_FSYNC = {errno.EINVAL, errno.EBADF, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTSUP}
_OURS = re.compile(rf"^{re.escape(TEMP_PREFIX)}(?P<pid>\d+)@(?P<host>[A-Za-z0-9.]*)-")


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write` on a temporary file beside `path`, then make it durable under that name.

    Raises DiskFullError when the device holding `path` is full; the target keeps its old
    content (if any) and no temporary file is left.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{os.getpid()}@{_host()}-", suffix=path.suffix)
    except OSError as exc:
        full = _disk_full(exc, path)
        if full is None:
            raise
        raise full from exc
    fh = None
    try:
        with _WatchedFile(io.FileIO(fd, "wb")) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:  # Ctrl-C and SystemExit too: never leave the temporary file
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, Exception) and not isinstance(exc, DiskFullError):
            full = _disk_full(exc, path) or _disk_full(fh.error if fh is not None else None, path)
            if full is not None:
                raise full from exc
        raise


def remove_stale_temporaries(folder: Path, max_age: float = STALE_SECONDS) -> list[Path]:
    """Remove the temporary files `atomic_write` left in `folder` (not below) when its process
    was killed: those written on this host by a process that no longer runs, and any `.tmp-*`
    file not modified for `max_age` seconds (another host's, an older naming, a reused pid).
    Returns what was removed; a folder that cannot be read is left as it is.

    Only for folders lenet-search owns (the data cache): the age rule takes any `.tmp-*` file.
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            stale = now - entry.stat(follow_symlinks=False).st_mtime > max_age
            ours = _OURS.match(entry.name)
            if ours and ours["host"] == _host() and not _alive(int(ours["pid"])):
                stale = True
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already (another run cleaned it), or not ours to remove
            continue
    return removed


class _WatchedFile(io.BufferedWriter):
    """The temporary file, remembering the first OSError a write or flush raised: a writer
    such as torch.save turns ENOSPC into a RuntimeError of its own."""

    error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            self.error = self.error or exc
            raise


def _disk_full(exc: BaseException | None, path: Path) -> DiskFullError | None:
    """A DiskFullError for `path` if ENOSPC/EDQUOT is `exc`, or what caused it (its chain)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _FULL:
            return DiskFullError(f"{_FULL[e.errno]} on the device holding {path}", path=path)
        todo += [e.__cause__, e.__context__]
    return None


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; skipped silently where directories cannot be fsynced (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIR_FSYNC:
            raise
    finally:
        os.close(fd)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64]


def _alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a zombie counts as running)."""
    if os.name == "nt":  # os.kill would terminate it: leave those to the age rule
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process (EPERM)
    return True
