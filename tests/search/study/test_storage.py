"""Storage URLs: a password is never shown; a new PostgreSQL database opened by several hosts at once."""

from __future__ import annotations

import multiprocessing
import time
import uuid

import optuna
import pytest
import sqlalchemy

from search.errors import StorageError
from search.study.storage import close_storage, make_storage, shown_url


@pytest.mark.parametrize(
    "url,shown",
    [
        ("postgresql://lenet:hunter2@127.0.0.1:5432/db", "postgresql://lenet:***@127.0.0.1:5432/db"),
        ("mysql+pymysql://a:b%40c@host/d", "mysql+pymysql://a:***@host/d"),
        ("postgresql://lenet@host/db", "postgresql://lenet@host/db"),
        ("sqlite:///studies/lenet.db", "sqlite:///studies/lenet.db"),
        ("bad://u:hunter2@h:notaport/db", "bad://u:***@h:notaport/db"),
    ],
)
def test_shown_url_masks_only_the_password(url, shown):
    assert shown_url(url) == shown


def test_an_unreachable_server_is_named_without_its_password():
    with pytest.raises(StorageError) as caught:
        make_storage("postgresql://lenet:hunter2@127.0.0.1:1/db")  # nothing listens on port 1
    assert "hunter2" not in str(caught.value) and "lenet:***@127.0.0.1:1/db" in str(caught.value)


def test_a_url_that_cannot_be_parsed_is_refused_without_its_password():
    with pytest.raises(StorageError) as caught:
        make_storage("postgresql://lenet:hunter2@127.0.0.1:notaport/db")
    assert "hunter2" not in str(caught.value) and "cannot be parsed" in str(caught.value)


def _open_at(url: str, start: float) -> None:
    time.sleep(max(0.0, start - time.time()))
    close_storage(make_storage(url))


def test_hosts_opening_an_empty_postgresql_database_at_once_all_get_the_storage(postgres_url):
    # The first hosts on a new database race to create Optuna's schema: PostgreSQL refuses the
    # losers' CREATE with a duplicate key (pg_type_typname_nsp_index); each must open it anyway.
    name = f"lenet_race_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    url = sqlalchemy.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    try:
        for _ in range(3):  # a fresh database each round: the race is only on an empty one
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
            start = time.time() + 3.0  # every process imported and waiting by then
            procs = [context.Process(target=_open_at, args=(url, start)) for _ in range(6)]
            for proc in procs:
                proc.start()
            for proc in procs:
                proc.join(timeout=120)
            assert [proc.exitcode for proc in procs] == [0] * 6
            assert optuna.get_all_study_names(url) == []  # the schema is there, and whole
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
