"""Riding out a database that goes away: an RDB storage whose calls survive a server restart,
killed backends and a stalled network for up to STORAGE_TIMEOUT_SECONDS, then stop with one line.

Three parts, each bounding one way a call can fail or hang (docs/reliability.md has the runs):
- a connection the server dropped between calls is replaced before use (`pool_pre_ping`);
- a call cut by a disconnect is retried, backing off, until the storage has failed to answer for
  STORAGE_TIMEOUT_SECONDS; then a StorageError says so (the study is as last written);
- a call that hangs (a network that holds bytes) has its connection cut by a watchdog after
  STALL_SECONDS, and is retried like any other cut; connecting is bounded, and TCP keepalives
  and a user timeout end a connection whose peer vanished.
On SQLite (a local file) nothing is retried: a full disk or a read-only file is one line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import optuna
import sqlalchemy
import sqlalchemy.event
import sqlalchemy.exc
from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage

from lenet.errors import DiskFullError
from search.errors import StorageError

STORAGE_TIMEOUT_SECONDS = float(os.environ.get("LENET_STORAGE_TIMEOUT", "60"))
STALL_SECONDS = STORAGE_TIMEOUT_SECONDS / 4  # one call in flight this long is taken for a stalled network
T = TypeVar("T")
SCHEMA_ATTEMPTS = 5  # opening a server storage whose schema another host is creating at the same moment
_BACKOFF_SECONDS = (0.05, 2.0)  # between retries: from the first, doubling to the last
# What a storage call raises when the database failed it (after the retries), not a bug: the
# refusals `sqlite_refusal` makes (a full disk among them) and what a server's failure is.
STORAGE_FAILURES = (
    StorageError,
    DiskFullError,
    sqlalchemy.exc.SQLAlchemyError,
    optuna.exceptions.StorageInternalError,
)

# The calls Optuna's RDB storage makes on the database (its cache in front of it calls these).
_CALLS = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "_create_new_trial",
    "set_trial_param",
    "_set_trial_param",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_best_trial",
    "_get_best_trial_id",
    "record_heartbeat",
    "_get_stale_trial_ids",
)


def postgresql_connect_args() -> dict[str, Any]:
    """libpq's bounds: connecting, and a connection whose peer is gone (keepalives unanswered,
    or data unacknowledged) ends instead of blocking for the kernel's two hours."""
    stall = max(2, int(STALL_SECONDS))
    return {
        "connect_timeout": stall,
        "keepalives": 1,
        "keepalives_idle": stall,
        "keepalives_interval": max(1, stall // 3),
        "keepalives_count": 3,
        "tcp_user_timeout": stall * 1000,  # ms
    }


# PostgreSQL's SQLSTATEs of a connection lost or a transaction to run again: class 08 (connection
# exception), the server shutting down or restarting (57P01-57P03), serialization and deadlock.
_RETRIED_SQLSTATES = ("08", "57P01", "57P02", "57P03", "40001", "40P01")


def is_disconnect(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is the database connection failing, not the call: a
    server error that is the call's (a full server disk, a bad statement) is not retried."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, sqlalchemy.exc.TimeoutError):  # the pool had no connection to give
            return True
        if type(seen).__module__.startswith("psycopg"):
            sqlstate = getattr(seen, "sqlstate", None)
            if sqlstate is None:  # the driver's own: no answer from the server at all
                return {c.__name__ for c in type(seen).__mro__} & {"OperationalError", "InterfaceError"} != set()
            return sqlstate.startswith(_RETRIED_SQLSTATES)
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.orig is not None and seen.orig is not seen:
            seen = seen.orig
            continue
        if isinstance(seen, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True  # another driver's (MySQL's): taken as the connection's
        seen = seen.__cause__ or seen.__context__
    return False


def sqlite_refusal(exc: BaseException, path: str) -> Exception | None:
    """The one-line error for a SQLite file that failed a call: full disk, read-only, locked
    past its timeout, damaged or unopenable; None for an error that is not the file's (a bug)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.Error):
            name = getattr(seen, "sqlite_errorname", "") or ""
            text = str(seen)
            if name == "SQLITE_FULL":
                message = f"no space left on the device holding {path} (the study is as last written)"
                return DiskFullError(message, path=Path(path))
            if name.startswith("SQLITE_READONLY"):
                return StorageError(f"SQLite storage {path} is read-only: it can be listed, shown and exported")
            if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                return StorageError(f"SQLite storage {path} stayed locked by another process past its timeout")
            if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "could not decode" in text.lower():
                return StorageError(f"SQLite storage {path} is damaged ({text}): restore it from a copy")
            if name.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR")):
                return StorageError(f"SQLite storage {path} cannot be read or written ({text})")
            return None
        seen = seen.__cause__ or seen.__context__
    return None


class GuardedStorage(RDBStorage):
    """Optuna's RDB storage, each call guarded as the module docstring says. `shown` is its URL
    as it may be printed (password masked); `sqlite_path` the file of a SQLite storage."""

    def __init__(self, url: str, *, shown: str, sqlite_path: str | None, **kwargs: Any) -> None:
        self._shown, self._sqlite_path = shown, sqlite_path
        self._gone: str | None = None  # why a call gave up on the server (see `retried`)
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                super().__init__(url, **kwargs)
                break
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, StorageInternalError):
                # Hosts that open an empty database at once race to create Optuna's schema; the
                # loser's CREATE or version row is refused (a duplicate key) once it is there.
                if sqlite_path is not None or attempt == SCHEMA_ATTEMPTS - 1:
                    raise
                engine = getattr(self, "engine", None)
                if engine is not None:
                    engine.dispose()
                time.sleep(0.2 * (attempt + 1))
        if sqlite_path is None:
            _Watchdog.watch(self.engine)


def retried(storage: Any, attempt: Callable[[], T]) -> T:
    """`attempt()`, a call on `storage`'s database, guarded as the module docstring says (as it
    is, where `storage` is no GuardedStorage). After one call gave up, the storage is taken
    for gone: the process is ending on that error, and later calls (its clean-up) fail at once
    with it instead of waiting out the bound again."""
    if not isinstance(storage, GuardedStorage):
        return attempt()
    if storage._gone is not None:  # the process is ending on it: its clean-up does not wait again
        raise StorageError(storage._gone)
    deadline = None
    delay = _BACKOFF_SECONDS[0]
    while True:
        try:
            if storage._sqlite_path is not None:
                return attempt()
            with _Watchdog.call(storage.engine):
                return attempt()
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            if storage._sqlite_path is not None:
                refusal = sqlite_refusal(exc, storage._sqlite_path)
                if refusal is None:
                    raise
                raise refusal from exc
            if not is_disconnect(exc):
                raise
            now = time.monotonic()
            deadline = deadline or now + STORAGE_TIMEOUT_SECONDS
            if now >= deadline:
                storage._gone = (
                    f"storage {storage._shown} did not answer for {STORAGE_TIMEOUT_SECONDS:.0f} s "
                    f"({_first_line(exc)}); the study is as last written: run the same command again "
                    "once the server is back"
                )
                raise StorageError(storage._gone) from exc
            time.sleep(min(delay, deadline - now))
            delay = min(2 * delay, _BACKOFF_SECONDS[1])


def _guarded(call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def guarded(self: GuardedStorage, *args: Any, **kwargs: Any) -> Any:
        return retried(self, lambda: call(self, *args, **kwargs))

    return guarded


for _name in _CALLS:
    setattr(GuardedStorage, _name, _guarded(getattr(RDBStorage, _name)))


def _first_line(exc: BaseException) -> str:
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    lines = str(getattr(root, "orig", None) or root).strip().splitlines()
    return lines[0] if lines else type(root).__name__


class _Watchdog:
    """One thread per process: a storage call in flight for longer than STALL_SECONDS (one Optuna
    call is one short transaction) has the connections it holds shut, or, holding none (stuck
    in the pool's ping), every connection of its engine no other call holds, so that what it
    blocks on fails, and is retried, instead of waiting for ever on a network that holds its
    bytes. Shut under the lock that `close` takes: a closed connection's descriptor is never
    shut after its number was reused."""

    _lock = threading.Lock()
    _connections: dict[int, dict[int, Any]] = {}  # id(engine) -> id(DBAPI connection) -> it
    _held: dict[int, set[int]] = {}  # thread -> ids of the connections it has checked out
    _calls: dict[int, tuple[float, int]] = {}  # thread -> (call started, id(engine))
    _thread: threading.Thread | None = None

    @classmethod
    def watch(cls, engine: sqlalchemy.engine.Engine) -> None:
        key = id(engine)
        cls._connections[key] = {}

        def connected(dbapi_connection: Any, record: Any) -> None:
            with cls._lock:
                cls._connections[key][id(dbapi_connection)] = dbapi_connection

        def closed(dbapi_connection: Any, record: Any) -> None:
            with cls._lock:
                cls._connections[key].pop(id(dbapi_connection), None)
                for held in cls._held.values():
                    held.discard(id(dbapi_connection))

        def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            with cls._lock:
                cls._held.setdefault(threading.get_ident(), set()).add(id(dbapi_connection))

        def checked_in(dbapi_connection: Any, record: Any) -> None:
            with cls._lock:
                for held in cls._held.values():
                    held.discard(id(dbapi_connection))

        sqlalchemy.event.listen(engine, "connect", connected)
        sqlalchemy.event.listen(engine, "close", closed)
        sqlalchemy.event.listen(engine, "close_detached", lambda c: closed(c, None))
        sqlalchemy.event.listen(engine, "checkout", checked_out)
        sqlalchemy.event.listen(engine, "checkin", checked_in)
        engine.dispose()  # the connections Optuna opened before these listeners: replaced by watched ones
        with cls._lock:
            if cls._thread is None or not cls._thread.is_alive():
                cls._thread = threading.Thread(target=cls._run, name="lenet-storage-watchdog", daemon=True)
                cls._thread.start()

    @classmethod
    @contextlib.contextmanager
    def call(cls, engine: sqlalchemy.engine.Engine) -> Iterator[None]:
        """Around one attempt of one storage call: watched while it runs."""
        thread = threading.get_ident()
        with cls._lock:
            outer = cls._calls.get(thread)
            if outer is None:
                cls._calls[thread] = (time.monotonic(), id(engine))
        try:
            yield
        finally:
            if outer is None:
                with cls._lock:
                    cls._calls.pop(thread, None)

    @classmethod
    def _run(cls) -> None:
        while True:
            time.sleep(min(1.0, STALL_SECONDS / 4))
            now = time.monotonic()
            with cls._lock:
                for thread, (started, key) in list(cls._calls.items()):
                    if now - started <= STALL_SECONDS:
                        continue
                    cls._calls[thread] = (now, key)  # cut once per stall, not every tick
                    connections = cls._connections.get(key, {})
                    held = cls._held.get(thread, set()) & set(connections)
                    if not held:  # in the ping or a connect: what no other call holds
                        others = set().union(*(h for t, h in cls._held.items() if t != thread))
                        held = set(connections) - others
                    for ident in held:
                        _shut(connections[ident])


def _shut(dbapi_connection: Any) -> None:
    """Shut the connection's socket (psycopg's): a read blocked on it returns at once."""
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None:
        return
    with contextlib.suppress(Exception):  # already closed: nothing to cut
        with socket.socket(fileno=os.dup(pgconn.socket)) as duplicate:  # shuts the socket, closes only the copy
            duplicate.shutdown(socket.SHUT_RDWR)
