"""Parallel studies that stay exact: a study's schedule in its clock makes the same study however
many processes execute it, whichever of them dies, on SQLite or on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.records.keys import ABANDONED
from search.records.study import study_record
from search.records.trial import TrialRecord, taken_over
from search.run.lane_trial import LaneTrial
from search.study.compare import differences, study_fields
from tests.search.cli_helpers import run_cli

ROOT = Path(__file__).resolve().parents[3]
TWO_LANES = ("--lanes", "2", "--trials", "12", "--max-epochs", "3")


def _fields(storage: str, name: str = "lenet5-cifar10") -> dict:
    return study_fields(optuna.load_study(study_name=name, storage=storage))


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory) -> dict:
    """The two-lane study executed by one process."""
    storage = f"sqlite:///{tmp_path_factory.mktemp('ref')}/ref.db"
    result = run_cli(*tiny.optimize_args(storage, *TWO_LANES, "--jobs", "1"))
    assert result.code == 0, result.err
    record = study_record(optuna.load_study(study_name="lenet5-cifar10", storage=storage))
    assert record.lanes == 2 and record.threads == 1
    fields = _fields(storage)
    lanes = {t.user_attrs["lane"] for t in optuna.load_study(study_name="lenet5-cifar10", storage=storage).trials}
    assert lanes == {0, 1} and len(fields["trials"]) == 12
    return fields


def test_a_two_lane_study_is_the_same_in_one_process_or_two(tiny, tmp_path, reference):
    for run in ("a", "b"):  # the same command twice
        storage = f"sqlite:///{tmp_path}/{run}.db"
        result = run_cli(*tiny.optimize_args(storage, *TWO_LANES, "--jobs", "2"))
        assert result.code == 0, result.err
        assert differences(_fields(storage), reference) == []


def test_a_trial_interrupted_after_storing_its_last_evaluation_is_judged_again_on_its_curve_so_far(
    tiny, tmp_path, reference, monkeypatch
):
    """Interrupted between storing the evaluation that pruned it and ending, a trial keeps its
    stored curve; taken over, it is trained again from its start and each evaluation is judged on
    the curve up to it, not on the stored one ahead of it, so it ends where it did (the CI
    failure after stop 27: judged at its first evaluation by its second, it ended a step early)."""
    real_end = LaneTrial._end
    struck: list[int] = []

    def end_interrupted(self, event, pruned):
        # Every trial pruned after its first evaluation, once: which rule would misjudge the
        # replay of which depends on the schedule, so each is tried.
        if pruned is not None and len(self.curve) >= 2 and self.number not in struck:
            struck.append(self.number)
            raise KeyboardInterrupt
        real_end(self, event, pruned)

    monkeypatch.setattr(LaneTrial, "_end", end_interrupted)
    storage = f"sqlite:///{tmp_path}/s.db"
    for _ in range(len(reference["trials"]) + 1):  # the same command, as a user resumes, until it ends
        result = run_cli(*tiny.optimize_args(storage, *TWO_LANES, "--jobs", "1"))
        if result.code != 130:
            break
        stored = optuna.load_study(study_name="lenet5-cifar10", storage=storage).trials[struck[-1]]
        assert stored.state == TrialState.RUNNING and len(TrialRecord.of(stored).curve) >= 2
    assert result.code == 0, result.err
    assert len(struck) >= 2
    assert differences(_fields(storage), reference) == []
    trials = optuna.load_study(study_name="lenet5-cifar10", storage=storage).trials
    # Each was taken over (twice, where an interruption of the other lane's trial abandoned it too).
    assert all(taken_over(trials[n]) >= 1 for n in struck)


def test_a_different_seed_is_a_different_study(tiny, tmp_path, reference):
    storage = f"sqlite:///{tmp_path}/s.db"
    assert run_cli(*tiny.optimize_args(storage, *TWO_LANES, "--jobs", "2", "--seed", "1")).code == 0
    assert differences(_fields(storage), reference) != []  # the comparison can fail


def _env() -> dict[str, str]:
    return {**os.environ, "LENET_HEARTBEAT_SECONDS": "1", "LENET_GRACE_SECONDS": "3", "PYTHONPATH": str(ROOT)}


def _host(tiny, storage: str, name: str, *extra: str) -> subprocess.Popen:
    """One `optimize` process, as a worker on another host starts it."""
    args = [
        sys.executable,
        "-m",
        "search.cli",
        *tiny.optimize_args(storage, *TWO_LANES, "--jobs", "1", "--study", name, *extra),
    ]
    return subprocess.Popen(args, env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err


def test_a_killed_host_is_taken_over_and_the_study_is_the_same(tiny, tmp_path, reference):
    storage = f"sqlite:///{tmp_path}/s.db"
    first, second = _host(tiny, storage, "lenet5-cifar10"), _host(tiny, storage, "lenet5-cifar10")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until some trial is mid-training
        try:
            trials = optuna.load_study(study_name="lenet5-cifar10", storage=storage).get_trials(deepcopy=False)
        except KeyError:
            trials = []
        if sum(t.state.is_finished() for t in trials) >= 2 and any(
            t.state == TrialState.RUNNING and t.intermediate_values for t in trials
        ):
            break
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    restarted = _host(tiny, storage, "lenet5-cifar10")
    _finish([second, restarted])
    fields = _fields(storage)
    assert differences(fields, reference) == []
    trials = optuna.load_study(study_name="lenet5-cifar10", storage=storage).get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert [t.number for t in trials if t.user_attrs.get(ABANDONED) == ""]  # one was taken over


def test_two_hosts_on_postgresql_make_the_same_study(tiny, postgres_url, reference):
    name = f"lanes-{uuid.uuid4().hex[:8]}"
    try:
        _finish([_host(tiny, postgres_url, name), _host(tiny, postgres_url, name)])
        assert differences(_fields(postgres_url, name), reference) == []
    finally:
        optuna.delete_study(study_name=name, storage=postgres_url)
