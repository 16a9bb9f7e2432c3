"""Study storages: an Optuna RDB storage per URL, with heartbeats and the retry of dead
workers' trials; SQLite set up for several local writers."""

from __future__ import annotations

import os
import re
import sqlite3
import urllib.parse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.engine
import sqlalchemy.exc
from optuna.storages import RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import TrialState

from lenet.errors import blame
from search.errors import StorageError
from search.study.outage import GuardedStorage, postgresql_connect_args, retried

DEFAULT_STORAGE = "sqlite:///studies/lenet.db"
# Executors beat every HEARTBEAT s; a trial silent for GRACE s is taken over by another executor.
# The environment may shorten both (tests that kill workers), never below Optuna's 1 s.
HEARTBEAT_SECONDS = max(1, int(os.environ.get("LENET_HEARTBEAT_SECONDS", "10")))
GRACE_SECONDS = max(2 * HEARTBEAT_SECONDS, int(os.environ.get("LENET_GRACE_SECONDS", "30")))


def shown_url(url: str) -> str:
    """`url` as it may be printed, logged or written: its password, if any, masked."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):  # unparsed (a bad port: ValueError), it may hold user:password@
        return _USERINFO_PASSWORD.sub(r"//\1:***@", url)
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


_USERINFO_PASSWORD = re.compile(r"//([^:/@]*):[^@/]*@")


def make_storage(url: str) -> RDBStorage:
    """An RDB storage with heartbeats and retry of dead workers' trials.

    SQLite waits up to 60 s for a lock instead of failing with "database is locked" when
    several local workers write at once. Build one per process and close it with
    `close_storage`.
    """
    engine_kwargs: dict[str, Any] = {}
    sqlite_path = None
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if str(path) not in ("", ":memory:"):
            if _read_only(path):  # listed, shown and exported as it is, written by nothing
                url = _read_only_url(path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                _use_wal(path)
        sqlite_path = str(path)
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif "://" not in url:
        raise StorageError(
            f"storage {shown_url(url)!r} is not a database URL (e.g. sqlite:///studies/lenet.db, postgresql://host/db)"
        )
    else:  # a server: its connections checked before use and bounded (search/study/outage.py)
        engine_kwargs["pool_pre_ping"] = True
        if url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
            engine_kwargs["connect_args"] = postgresql_connect_args()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in use
            return GuardedStorage(
                url,
                shown=shown_url(url),
                sqlite_path=sqlite_path,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
            )
    except (
        sqlalchemy.exc.ArgumentError,
        sqlalchemy.exc.NoSuchModuleError,
        ValueError,
    ) as exc:  # ValueError: a bad port
        why = str(exc).splitlines()[0].replace(url, shown_url(url))
        raise StorageError(f"storage URL {shown_url(url)!r} cannot be parsed: {why}") from None  # it quotes the URL
    except sqlalchemy.exc.OperationalError as exc:
        why = str(exc.orig).strip().splitlines()[0]
        raise StorageError(f"storage {shown_url(url)!r} cannot be reached: {why}") from exc
    except ImportError as exc:
        raise StorageError(
            f"storage {shown_url(url)!r} needs a database driver that is not installed: {exc.name}"
        ) from exc


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """The trials RUNNING whose worker is gone: a heartbeat older than the grace period (Optuna's
    own check, as `fail_stale_trials` makes it), or none at all a grace period after the trial
    started (killed between asking for it and its first beat, which Optuna never calls stale)."""
    storage = study._storage
    if not isinstance(storage, BaseHeartbeat):
        return []
    stale = set(storage._get_stale_trial_ids(study._study_id))
    cutoff = datetime.now() - timedelta(seconds=GRACE_SECONDS)  # Optuna stamps starts in local time
    old = [
        t._trial_id
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.datetime_start is not None and t.datetime_start < cutoff and t._trial_id not in stale
    ]
    return sorted(stale | set(_without_heartbeat(storage, old)))


def rdb_storage(storage: Any) -> RDBStorage:
    """The RDB storage behind a study's storage (Optuna puts a cache in front of it: `_backend`)."""
    return getattr(storage, "_backend", storage)


def _without_heartbeat(storage: Any, trial_ids: list[int]) -> list[int]:
    """Those of `trial_ids` with no heartbeat row (Optuna's private model: pinned, tested)."""
    if not trial_ids:
        return []
    from optuna.storages._rdb.models import TrialHeartbeatModel

    rdb = rdb_storage(storage)
    query = sqlalchemy.select(TrialHeartbeatModel.trial_id).where(TrialHeartbeatModel.trial_id.in_(trial_ids))

    def read() -> set[int]:
        with rdb.engine.connect() as conn:
            return {row[0] for row in conn.execute(query)}

    beating = retried(rdb, read)
    return [i for i in trial_ids if i not in beating]


def close_storage(storage: RDBStorage) -> None:
    """Close the storage's pooled database connections now, not whenever it is collected."""
    storage.engine.dispose()


def _read_only_url(path: Path) -> str:
    """A read-only SQLite file's URL: immutable on a read-only file system (no lock or -shm file
    can be made there; a -wal file left holding changes is refused, as it would not be read),
    else read-only mode (its owner may be writing it)."""
    quoted = urllib.parse.quote(str(path.resolve()))
    if not os.statvfs(path).f_flag & os.ST_RDONLY:
        return f"sqlite:///file:{quoted}?mode=ro&uri=true"
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise StorageError(
            f"SQLite storage {path} is on a read-only file system with changes left in {wal.name}: "
            "open it once where it can be written"
        )
    return f"sqlite:///file:{quoted}?immutable=1&uri=true"


def _read_only(path: Path) -> bool:
    """Whether an existing SQLite file cannot be written: on a read-only file system, or not
    writable by this user (root writes any file of a writable file system)."""
    if not path.is_file():
        return False
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY) or not os.access(path, os.W_OK)


def _use_wal(path: Path) -> None:
    """Write-ahead logging: readers (the progress display, other workers' pruners) no longer
    block the writer. It is a property of the file, so setting it once is enough."""
    try:
        with sqlite3.connect(path, timeout=60) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise StorageError(f"SQLite storage {path} cannot be opened: {exc}") from exc


@contextmanager
def opened(url: str) -> Iterator[RDBStorage]:
    """The storage at `url`, closed when the block ends."""
    with blame("storage_url"):
        storage = make_storage(url)
    try:
        yield storage
    finally:
        close_storage(storage)
