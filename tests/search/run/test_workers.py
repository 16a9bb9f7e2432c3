"""Signals in a worker: raised where they land, but never inside a storage call."""

from __future__ import annotations

import signal
import time

import optuna
import pytest
from sqlalchemy import event

from search.run.workers import Interrupted, install_signal_handlers
from search.study.storage import close_storage, make_storage


@pytest.fixture
def handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    install_signal_handlers()
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    for s, h in saved.items():
        signal.signal(s, h)


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
