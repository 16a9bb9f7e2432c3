"""The executor's take-over of trials whose executor stopped, driven directly on a real SQLite
study: several executors that look at once, and a trial killed before its first heartbeat."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

import search.study.storage
from search.pruning.factory import make_pruner
from search.records.study import study_record
from search.records.trial import abandoned, placement_of, taken_over, write_abandoned, write_placement
from search.run.executor import Executor
from search.run.schedule import Schedule
from search.run.spec import Placement
from search.study.claims import latest, trial_subject
from search.study.opening import load_study
from search.study.storage import close_storage, make_storage, stale_trial_ids
from tests.search.run.specs import worker_spec


def _study(tiny, tmp_path, name="race", n_trials=2):
    url = f"sqlite:///{tmp_path}/s.db"
    spec = worker_spec(tiny, url, name, n_trials)
    storage = make_storage(url)
    record = study_record(optuna.load_study(study_name=name, storage=storage))
    study = load_study(name, storage, record, sampler="random", seed=0, pruner=make_pruner("none", 0.6, 4))
    return spec, storage, record, study


def test_of_executors_that_see_one_orphan_at_once_one_takes_it_over(tiny, tmp_path):
    spec, storage, record, study = _study(tiny, tmp_path)
    try:
        orphan = study.ask()
        write_abandoned(orphan, "interrupted by SIGTERM")  # its executor stopped
        snapshot = study.get_trials(deepcopy=False)  # what both see as they look
        schedule = Schedule(snapshot, record.lanes, spec.request.n_trials)
        first, second = (Executor(spec, Placement("cpu", None), study, record, 1) for _ in range(2))
        assert first._take_over(snapshot, schedule)
        assert not second._take_over(snapshot, schedule)  # its claim's generation was taken
        assert list(first.held) == [orphan.number] and second.held == {}
        stored = study.get_trials(deepcopy=False)[orphan.number]
        assert taken_over(stored) == 1 and not abandoned(stored)
        assert latest(storage, trial_subject(stored))[0] == 1

        # The first stops in turn: the next executor claims the next generation, and the first,
        # had it gone on (stopped past the grace period, then continued), lets the trial go.
        write_abandoned(first.held[orphan.number].trial, "interrupted by SIGTERM")
        snapshot = study.get_trials(deepcopy=False)
        assert second._take_over(snapshot, Schedule(snapshot, record.lanes, spec.request.n_trials))
        snapshot = study.get_trials(deepcopy=False)
        assert taken_over(snapshot[orphan.number]) == 2
        first._forget_ended(snapshot)
        assert first.held == {} and list(second.held) == [orphan.number]
    finally:
        close_storage(storage)


def test_a_late_write_of_a_stopped_executor_is_mended_by_the_trials_new_owner(tiny, tmp_path):
    """An executor stopped inside a move (SIGSTOP) writes that move's placement when continued,
    over a trial another took over meanwhile: its horizon lower than the new owner's. Left so,
    a lane waits for an event the owner has taken, and every executor polls for ever (the hang
    of 2026-12-07, docs/reliability.md); the owner writes its own horizon back, once."""
    spec, storage, record, study = _study(tiny, tmp_path)
    try:
        orphan = study.ask()
        write_abandoned(orphan, "interrupted by SIGTERM")
        owner = Executor(spec, Placement("cpu", None), study, record, 1)
        snapshot = study.get_trials(deepcopy=False)
        assert owner._take_over(snapshot, Schedule(snapshot, record.lanes, spec.request.n_trials))
        snapshot = study.get_trials(deepcopy=False)
        assert owner._place(snapshot, Schedule(snapshot, record.lanes, spec.request.n_trials))
        held = owner.held[orphan.number]
        for move in (owner._compute, owner._decide):  # its first evaluation: a horizon past its start
            snapshot = study.get_trials(deepcopy=False)
            assert move(snapshot, Schedule(snapshot, record.lanes, spec.request.n_trials))
        published = held.published
        assert published > 0 and placement_of(study.get_trials()[orphan.number]).horizon == published

        write_placement(orphan, 0, 0.0, published / 2)  # the stopped executor's move, landing late
        assert owner._mend(study.get_trials(deepcopy=False))
        assert placement_of(study.get_trials()[orphan.number]).horizon == published
        assert not owner._mend(study.get_trials(deepcopy=False))  # once: nothing left to mend
    finally:
        close_storage(storage)


def test_a_trial_killed_before_its_first_heartbeat_goes_stale(tiny, tmp_path, monkeypatch):
    """Optuna never calls a trial without a heartbeat row stale; every lane would wait for it."""
    _, storage, _, study = _study(tiny, tmp_path)
    try:
        silent, beating = study.ask(), study.ask()
        study._storage.record_heartbeat(beating._trial_id)
        assert stale_trial_ids(study) == []  # both started just now
        monkeypatch.setattr(search.study.storage, "GRACE_SECONDS", 0)  # as a grace period later
        assert stale_trial_ids(study) == [silent._trial_id]  # the beating one is Optuna's to judge
        assert {t.state for t in study.get_trials()} == {TrialState.RUNNING}
    finally:
        close_storage(storage)


def test_a_heartbeat_on_a_full_disk_fails_quietly_and_beats_on(tmp_path, monkeypatch):
    """The beat's storage call refused for the disk (the refusal the storage makes of
    SQLITE_FULL) is a failed beat, not a thread that dies with a traceback on stderr: the main
    thread says why the run stops (the flake of the disk-full test)."""
    import threading
    import time

    import search.run.executor
    from search.run.executor import _Heartbeats
    from tests.tmpfs import fill, small_tmpfs

    monkeypatch.setattr(search.run.executor, "HEARTBEAT_SECONDS", 0.05)
    died = []
    monkeypatch.setattr(threading, "excepthook", died.append)
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        storage = make_storage(f"sqlite:///{disk}/s.db")
        study = optuna.create_study(study_name="s", storage=storage)
        trial_id = study.ask()._trial_id
        beats = _Heartbeats(study, lambda: [trial_id])
        filler = fill(disk)
        beats.start()
        try:
            deadline = time.monotonic() + 10
            while not beats.failing() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (beats.failing(), beats._thread.is_alive(), died) == (True, True, [])
        finally:
            beats.stop()
            filler.unlink()
            close_storage(storage)
