"""Signals in a worker: raised where they land, but never inside a storage call."""

from __future__ import annotations

import signal
import time

import optuna
import pytest
from sqlalchemy import event

from search.run import workers
from search.run.executor import POLL_SECONDS, poll_seconds
from search.run.workers import Interrupted, signal_handlers
from search.study.storage import close_storage, make_storage

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)


@pytest.fixture
def handlers():
    before = {s: signal.getsignal(s) for s in SIGNALS}
    with signal_handlers():
        yield
    assert {s: signal.getsignal(s) for s in SIGNALS} == before  # restored


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_commit_lets_the_commit_finish_then_interrupts(handlers, tmp_path, sig):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    try:
        study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")
        delivered = []

        def signal_mid_commit(conn):  # runs inside SQLAlchemy's commit, as a real signal may
            if not delivered:
                delivered.append(True)
                signal.raise_signal(sig)

        event.listen(storage.engine, "commit", signal_mid_commit)
        storage.set_study_user_attr(study_id, "k", "v")  # returns: the signal waits for it
        assert delivered
        with pytest.raises(Interrupted) as caught:
            time.sleep(2)  # ...and is raised once the call has returned
        assert caught.value.signum == sig and caught.value.exit_code == 128 + sig
        event.remove(storage.engine, "commit", signal_mid_commit)
        assert storage.get_study_user_attrs(study_id) == {"k": "v"}  # the commit was not broken
    finally:
        close_storage(storage)


def test_a_signal_outside_storage_is_raised_at_once(handlers):
    with pytest.raises(Interrupted) as caught:
        signal.raise_signal(signal.SIGINT)
        time.sleep(2)
    assert caught.value.signum == signal.SIGINT


def test_a_signal_in_the_blocks_last_storage_call_is_raised_when_the_block_ends(tmp_path):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    try:
        study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")
        listener = lambda conn: signal.raise_signal(signal.SIGTERM)  # noqa: E731
        event.listen(storage.engine, "commit", listener)
        with pytest.raises(Interrupted):
            with signal_handlers():
                storage.set_study_user_attr(study_id, "k", "v")  # the block ends before the retry
        event.remove(storage.engine, "commit", listener)
        assert storage.get_study_user_attrs(study_id) == {"k": "v"}
    finally:
        close_storage(storage)


def test_a_storage_call_that_hangs_is_interrupted_anyway(handlers, tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "_DEFER_SECONDS", 0.3)
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    try:
        study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")

        def hang(conn):  # a commit that never returns, as with a lost database server
            signal.raise_signal(signal.SIGINT)
            time.sleep(60)

        event.listen(storage.engine, "commit", hang)
        started = time.monotonic()
        with pytest.raises(BaseException) as caught:
            storage.set_study_user_attr(study_id, "k", "v")
        assert time.monotonic() - started < 30  # not the minute the call would have hung
        assert isinstance(caught.value, Interrupted) or isinstance(caught.value.__context__, Interrupted)
        event.remove(storage.engine, "commit", hang)
    finally:
        close_storage(storage)


def test_an_idle_executor_backs_off_to_the_longest_poll_and_stays_there():
    assert poll_seconds(0) == POLL_SECONDS[0]
    assert poll_seconds(1) == 2 * POLL_SECONDS[0]
    assert poll_seconds(2000) == POLL_SECONDS[1]  # 2**2000 would overflow a float
