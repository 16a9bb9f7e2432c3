"""Claims: a compare-and-swap that every storage Optuna supports can make.

A claim is a row keyed by (subject, generation) in a table of lenet-search's own, next to
Optuna's: inserting it is atomic, so of several hosts that try to claim one generation of one
subject (a trial to take over, a study's confirmation race) exactly one succeeds, whatever the
database (SQLite or PostgreSQL). A host that claims generation g has seen generation g - 1 as
the latest: one that saw an older state loses, because its row is already there.
"""

from __future__ import annotations

import os
import socket
import uuid
import weakref

import sqlalchemy
import sqlalchemy.exc
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from search.study.outage import retried
from search.study.storage import rdb_storage

CLAIMS = sqlalchemy.Table(
    "lenet_claims",
    sqlalchemy.MetaData(),
    sqlalchemy.Column("subject", sqlalchemy.String(255), primary_key=True),
    sqlalchemy.Column("generation", sqlalchemy.Integer, primary_key=True, autoincrement=False),
    sqlalchemy.Column("owner", sqlalchemy.String(255), nullable=False),
)

# This process, as a claim names it: host, pid and a random part (pids are reused).
OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

_created: weakref.WeakSet[sqlalchemy.engine.Engine] = weakref.WeakSet()  # this process made sure of their table


def trial_subject(trial: FrozenTrial) -> str:
    """A trial, by its id and start: SQLite reuses the ids of a deleted study's trials."""
    started = trial.datetime_start.isoformat() if trial.datetime_start else ""
    return f"trial:{trial._trial_id}:{started}"


def creation_subject(name: str, study_id: int) -> str:
    """The deletion of a killed creation of study `name` (its id then)."""
    return f"creation:{name}:{study_id}"


def confirmation_subject(study_id: int) -> str:
    return f"confirmation:{study_id}"


def claim(storage: BaseStorage, subject: str, generation: int, owner: str = OWNER) -> bool:
    """Claim `generation` of `subject` for `owner`: True for the one host whose row went in (an
    insert retried after a cut connection that had gone in is this host's, not another's)."""
    rdb = rdb_storage(storage)
    engine = rdb.engine

    def insert() -> bool:
        _ensure_table(engine)
        try:
            with engine.begin() as conn:
                conn.execute(CLAIMS.insert().values(subject=subject, generation=generation, owner=owner))
        except sqlalchemy.exc.IntegrityError:
            return _latest(engine, subject) == (generation, owner)
        return True

    return retried(rdb, insert)


def latest(storage: BaseStorage, subject: str) -> tuple[int, str] | None:
    """The latest generation of `subject` claimed, and its owner; None where none is."""
    rdb = rdb_storage(storage)
    return retried(rdb, lambda: _latest(rdb.engine, subject))


def _latest(engine: sqlalchemy.engine.Engine, subject: str) -> tuple[int, str] | None:
    query = (
        sqlalchemy.select(CLAIMS.c.generation, CLAIMS.c.owner)
        .where(CLAIMS.c.subject == subject)
        .order_by(CLAIMS.c.generation.desc())
        .limit(1)
    )
    try:
        with engine.connect() as conn:
            row = conn.execute(query).first()
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
        if sqlalchemy.inspect(engine).has_table(CLAIMS.name):
            raise
        return None  # no claim was ever made here (a read-only file is read, never written)
    return None if row is None else (row.generation, row.owner)


def _ensure_table(engine: sqlalchemy.engine.Engine) -> None:
    if engine in _created:
        return
    try:
        CLAIMS.metadata.create_all(engine, checkfirst=True)
    except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError):
        # Two hosts creating it at once: PostgreSQL refuses the second; the table is there.
        if not sqlalchemy.inspect(engine).has_table(CLAIMS.name):
            raise
    _created.add(engine)
