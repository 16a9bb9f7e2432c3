"""Preparing a run: where each worker trains, what is said when workers share a card, and
joining a study another host is creating."""

import threading

import optuna
import pytest
import torch
from optuna.study import StudyDirection

import search.run.prepare
import search.study.opening
from search.records.study import study_record
from search.run.prepare import shared_device_notes
from search.run.spec import Placement, confirm_placement, lane_threads, worker_placements
from search.study.outage import GuardedStorage
from search.study.storage import make_storage
from tests.search.cli_helpers import run_cli


def test_workers_sharing_a_card_are_warned_about(monkeypatch):
    monkeypatch.setattr(search.run.prepare, "accelerator_count", lambda kind: 2)
    assert shared_device_notes(torch.device("cuda"), 2) == []
    (note,) = shared_device_notes(torch.device("cuda"), 3)
    assert "3 workers share 2 cuda device(s)" in note
    assert "share 1 cuda" in shared_device_notes(torch.device("cuda:1"), 2)[0]
    assert shared_device_notes(torch.device("cpu"), 4) == []


def test_each_worker_gets_its_placement_once(monkeypatch):
    import search.run.spec

    monkeypatch.setattr(search.run.spec, "cpu_count", lambda: 8)
    assert (
        lane_threads(torch.device("cpu"), 1) == 8 and lane_threads(torch.device("cpu"), 3) == 2
    )  # never oversubscribed
    assert lane_threads(torch.device("cuda"), 2) is None
    # Every worker trains with the study's threads per lane, whichever process it is.
    assert worker_placements(torch.device("cpu"), 1, 4) == (Placement("cpu", 4),)
    assert worker_placements(torch.device("cpu"), 3, 2) == (Placement("cpu", 2),) * 3
    assert confirm_placement(torch.device("cpu"), 4) == Placement("cpu", 8)  # after the search: every core
    monkeypatch.setattr(search.run.spec, "accelerator_count", lambda kind: 2)
    cards = worker_placements(torch.device("cuda"), 3, None)
    assert [p.device for p in cards] == ["cuda:0", "cuda:1", "cuda:0"] and {p.threads for p in cards} == {None}
    assert worker_placements(torch.device("cuda"), 1, None) == (Placement("cuda", None),)  # a lone worker: as named
    assert confirm_placement(torch.device("cuda"), 3) == Placement("cuda:0", None)
    assert [p.device for p in worker_placements(torch.device("cuda:1"), 2, None)] == ["cuda:1", "cuda:1"]


@pytest.mark.parametrize("window", ["before the look", "between the look and the creation"])
def test_a_host_that_loses_the_race_to_create_the_study_joins_it_as_stored(tmp_path, tiny, monkeypatch, window):
    """Another host's `optimize` creates the study, and writes its record (seed 7, the target
    last) half a second later, either before this run looks for the study or after it looked and
    before it creates one: this run joins that study either way."""
    storage = f"sqlite:///{tmp_path}/s.db"
    assert run_cli(*tiny.optimize_args(storage, "--study", "theirs", "--seed", "7", "--trials", "1")).code == 0
    theirs = study_record(optuna.load_study(study_name="theirs", storage=storage)).items()  # as a creator writes
    real_create = GuardedStorage.create_new_study

    def create_as_the_other_host(self, directions, study_name=None):
        study_id = real_create(self, directions, study_name)

        def write():
            for key in sorted(theirs, key=lambda k: k == "target"):
                self.set_study_user_attr(study_id, key, theirs[key])

        threading.Timer(0.5, write).start()
        return study_id

    if window == "before the look":
        create_as_the_other_host(make_storage(storage), [StudyDirection.MINIMIZE], "s")
    else:

        def created_by_the_other_host(self, directions, study_name=None):
            monkeypatch.setattr(GuardedStorage, "create_new_study", real_create)
            create_as_the_other_host(self, directions, study_name)
            raise optuna.exceptions.DuplicatedStudyError(study_name)

        monkeypatch.setattr(GuardedStorage, "create_new_study", created_by_the_other_host)
    result = run_cli(*tiny.optimize_args(storage, "--study", "s", "--seed", "0", "--trials", "2"))
    assert result.code == 0, (result.err, result.exception)
    study = optuna.load_study(study_name="s", storage=storage)
    assert study_record(study).seed == 7 and len(study.trials) == 2
    assert sorted(optuna.get_all_study_names(storage)) == ["s", "theirs"]


def test_a_creation_killed_before_its_target_is_made_again_by_the_next_run(tmp_path, tiny, monkeypatch):
    """SIGKILL while the study's attributes were being written leaves a study with some of them
    and no target (and no trial): the same command, run again, makes the study anew."""
    monkeypatch.setattr(search.study.opening, "CREATION_SECONDS", 0.5)
    storage = f"sqlite:///{tmp_path}/s.db"
    assert run_cli(*tiny.optimize_args(storage, "--study", "theirs", "--trials", "1")).code == 0
    attrs = optuna.load_study(study_name="theirs", storage=storage).user_attrs
    killed = optuna.create_study(study_name="s", storage=storage)
    for key in [k for k in attrs if k != "target"][:3]:  # as far as the killed run got
        killed.set_user_attr(key, attrs[key])
    result = run_cli(*tiny.optimize_args(storage, "--study", "s", "--trials", "2"))
    assert result.code == 0, (result.err, result.exception)
    study = optuna.load_study(study_name="s", storage=storage)
    assert study_record(study) is not None and len(study.trials) == 2


def test_a_study_of_someone_elses_is_refused_and_an_empty_one_made_anew(tmp_path, tiny, monkeypatch):
    """No trial and attributes that are not a record's: someone else's, refused and kept. No
    trial and no attribute at all (a creation killed before its first): made again."""
    monkeypatch.setattr(search.study.opening, "CREATION_SECONDS", 0.5)
    storage = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(study_name="theirs", storage=storage).set_user_attr("owner", "alice")
    result = run_cli(*tiny.optimize_args(storage, "--study", "theirs", "--trials", "2"))
    assert result.code == 2 and "not created by lenet-search" in result.err
    assert optuna.load_study(study_name="theirs", storage=storage).user_attrs == {"owner": "alice"}
    optuna.create_study(study_name="empty", storage=storage)
    result = run_cli(*tiny.optimize_args(storage, "--study", "empty", "--trials", "2"))
    assert result.code == 0, result.err
    assert len(optuna.load_study(study_name="empty", storage=storage).trials) == 2


def test_sigkill_while_the_study_is_being_created_then_the_same_command_finishes(tmp_path, tiny):
    """A real `optimize` process, its attribute writes slowed so that the kill lands between
    them (a child that patches the storage, then runs the command line), killed with SIGKILL
    while creating the study; the same command then makes the study and finishes it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from search.records.study import StudyRecord
    from tests.search.run.test_reliability import ROOT, _env

    storage = f"sqlite:///{tmp_path}/s.db"
    args = tiny.optimize_args(storage, "--trials", "2")
    slowed = (
        "import sys, time\n"
        "from search.study.outage import GuardedStorage\n"
        "real = GuardedStorage.set_study_user_attr\n"
        "GuardedStorage.set_study_user_attr = lambda self, *a: (time.sleep(0.5), real(self, *a))[1]\n"
        "from search.cli.main import main\n"
        f"sys.argv = ['lenet-search', *{[str(a) for a in args]!r}]\n"
        "main()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", slowed], env=_env(), cwd=ROOT)
    deadline = time.monotonic() + 120
    try:
        while True:  # until some of the record is written, and not its target
            assert proc.poll() is None and time.monotonic() < deadline
            try:
                attrs = optuna.load_study(study_name="lenet5-cifar10", storage=storage).user_attrs
            except KeyError:
                attrs = {}
            if StudyRecord.partly_written(attrs):
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert study_record(optuna.load_study(study_name="lenet5-cifar10", storage=storage)) is None  # as killed
    rerun = subprocess.run(
        [sys.executable, "-m", "search.cli", *map(str, args)], env=_env(), cwd=ROOT, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    study = optuna.load_study(study_name="lenet5-cifar10", storage=storage)
    assert study_record(study) is not None and len(study.trials) == 2
