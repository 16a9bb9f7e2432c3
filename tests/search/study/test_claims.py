"""Claims: of several hosts that claim one generation of one subject, exactly one succeeds, on
SQLite and on the real PostgreSQL server; a storage that never saw a claim reads none."""

from __future__ import annotations

import threading
import uuid

import sqlalchemy

from search.study.claims import CLAIMS, OWNER, claim, latest
from search.study.storage import close_storage, make_storage


def test_a_generation_is_claimed_once_and_the_latest_is_read(tmp_path):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    try:
        assert latest(storage, "trial:1") is None  # no claim was ever made: no table yet
        assert not sqlalchemy.inspect(storage.engine).has_table(CLAIMS.name)  # reading made none
        assert claim(storage, "trial:1", 1)
        assert not claim(storage, "trial:1", 1, owner="another host")
        assert latest(storage, "trial:1") == (1, OWNER)
        assert claim(storage, "trial:1", 2, owner="another host") and claim(storage, "trial:2", 1)
        assert latest(storage, "trial:1") == (2, "another host") and latest(storage, "trial:3") is None
    finally:
        close_storage(storage)


def _race(url: str, subject: str, hosts: int) -> list[bool]:
    """`hosts` storages (as many hosts) claim generation 1 of `subject` at one moment."""
    storages = [make_storage(url) for _ in range(hosts)]
    start, won = threading.Barrier(hosts), [False] * hosts

    def host(i: int) -> None:
        start.wait()
        won[i] = claim(storages[i], subject, 1, owner=f"host {i}")

    threads = [threading.Thread(target=host, args=(i,)) for i in range(hosts)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for s in storages:
            close_storage(s)
    return won


def test_hosts_that_claim_at_once_on_sqlite_one_wins(tmp_path):
    assert sum(_race(f"sqlite:///{tmp_path}/s.db", "trial:1", 6)) == 1


def test_hosts_that_claim_at_once_on_postgresql_one_wins(postgres_url):
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as conn:  # the hosts create the table at once, too
        conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {CLAIMS.name}"))
    engine.dispose()
    subject = f"trial:{uuid.uuid4().hex}"
    won = _race(postgres_url, subject, 6)
    assert sum(won) == 1
    storage = make_storage(postgres_url)
    try:
        assert latest(storage, subject) == (1, f"host {won.index(True)}")
    finally:
        close_storage(storage)
