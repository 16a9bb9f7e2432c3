"""Crashes, interruptions and concurrent workers, with real processes and real databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import weakref
from pathlib import Path

import optuna
import pytest
import sqlalchemy.engine
import torch
from optuna.trial import TrialState

import search.run.lane_trial
from lenet.device import DevicePolicy
from search.confirm.race import confirmation_of
from search.records.trial import TrialRecord, taken_over
from search.run.workers import run_worker
from search.study.claims import latest, trial_subject
from search.study.storage import close_storage, make_storage
from tests.search.cli_helpers import run_cli
from tests.search.run.specs import worker_spec

ROOT = Path(__file__).resolve().parents[3]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _env() -> dict[str, str]:
    # Short heartbeats so that a killed worker's trial goes stale in seconds, not minutes.
    return {**os.environ, "LENET_HEARTBEAT_SECONDS": "1", "LENET_GRACE_SECONDS": "3", "PYTHONPATH": str(ROOT)}


def _command(tiny, storage, *extra) -> list[str]:
    # A high target and no pruning: trials run (nearly) their whole budget, a long window to
    # strike in (the pruner would stop most of them within an epoch or two on the tiny data).
    args = tiny.optimize_args(storage, "--pruner", "none", "--max-epochs", "8", *extra)
    args[args.index("--target") + 1] = "0.99"
    return [sys.executable, "-m", "search.cli", *args]


def _start(tiny, storage, *extra) -> subprocess.Popen:
    return subprocess.Popen(
        _command(tiny, storage, *extra), env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _rerun(tiny, storage, *extra) -> subprocess.CompletedProcess:
    """The same command again, as a user resumes."""
    return subprocess.run(
        _command(tiny, storage, *extra), env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def _study(storage, name="lenet5-cifar10"):
    return optuna.load_study(study_name=name, storage=storage)


def _wait_mid_trial(storage, proc, min_finished=1, timeout=120, name="lenet5-cifar10"):
    """Block until at least `min_finished` trials finished and another one is RUNNING."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            trials = _study(storage, name).get_trials(deepcopy=False)
        except KeyError:  # the study is not created yet
            trials = []
        done = [t for t in trials if t.state in FINISHED]
        running = [t for t in trials if t.state == TrialState.RUNNING]
        if len(done) >= min_finished and running and len(running[0].intermediate_values) >= 1:
            return done, running[0]
        time.sleep(0.05)
    pytest.fail("no trial was running")


def _snapshot(trials):
    return {t.number: (t.state, t.value, t.datetime_complete, t.params) for t in trials}


def test_kill_9_mid_trial_then_rerun_completes_the_study(tiny, tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    proc = _start(tiny, storage, "--trials", "5")
    done, victim = _wait_mid_trial(storage, proc, min_finished=2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _snapshot(t for t in _study(storage).get_trials() if t.state in FINISHED)
    assert _study(storage).trials[victim.number].state == TrialState.RUNNING  # as the kill left it

    rerun = _rerun(tiny, storage, "--trials", "5")
    assert rerun.returncode == 0, rerun.stderr
    trials = _study(storage).get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 5
    assert {n: v for n, v in _snapshot(finished).items() if n in before} == before  # nothing finished was lost
    # The killed trial was taken over once its heartbeat went stale, and trained again: it kept
    # its number and its place in the schedule.
    assert trials[victim.number].state in FINISHED and len(trials) == 5
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def _phase_reached(storage: str, phase: str, finished_at_start: list[int]) -> bool:
    try:
        study = _study(storage)
    except KeyError:
        return False
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in FINISHED]
    if phase == "first seconds of a trial":
        return any(t.state == TrialState.RUNNING and not t.intermediate_values for t in trials) and bool(finished)
    if phase == "between trials":  # a trial just ended, the next not yet trained
        if not finished_at_start:
            finished_at_start.append(len(finished))
        return len(finished) > finished_at_start[0] and not any(
            t.state == TrialState.RUNNING and t.intermediate_values for t in trials
        )
    race = confirmation_of(study)
    return bool(race and race.runs)  # during the confirmation race: a run of it stored


@pytest.mark.parametrize("phase", ["first seconds of a trial", "between trials", "the confirmation race"])
def test_sigkill_in_each_phase_then_the_same_command_finishes(tiny, tmp_path, phase):
    storage = f"sqlite:///{tmp_path}/s.db"
    if phase == "the confirmation race":  # a target the trials reach, so that there is a race
        args = [sys.executable, "-m", "search.cli", *tiny.optimize_args(storage, "--trials", "4")]
    else:
        args = _command(tiny, storage, "--trials", "4")
    proc = subprocess.Popen(args, env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[int] = []
    deadline = time.monotonic() + 180
    try:
        while not _phase_reached(storage, phase, seen):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"never reached {phase}"
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _snapshot(t for t in _study(storage).get_trials() if t.state in FINISHED)
    rerun = subprocess.run(args, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    trials = _study(storage).get_trials()
    assert len([t for t in trials if t.state in FINISHED]) == 4 and TrialState.RUNNING not in {t.state for t in trials}
    assert {n: v for n, v in _snapshot(t for t in trials if t.state in FINISHED).items() if n in before} == before
    if phase == "the confirmation race":
        race = confirmation_of(_study(storage))
        assert race is not None and race.done and "winner" in rerun.stdout


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_ends_the_trial_with_a_reason_and_rerun_resumes(tiny, tmp_path, sig, code):
    storage = f"sqlite:///{tmp_path}/s.db"
    proc = _start(tiny, storage, "--trials", "4")
    _, victim = _wait_mid_trial(storage, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Resume with the same command" in err and "Traceback" not in err
    trials = _study(storage).get_trials()
    # It stays where it stopped, marked so that the next run takes it over at once.
    assert trials[victim.number].state == TrialState.RUNNING
    victim_record = TrialRecord.of(trials[victim.number])
    assert victim_record.outcome == "interrupted" and signal.Signals(sig).name in victim_record.reason
    assert [t.number for t in trials if t.state == TrialState.RUNNING] == [victim.number]

    rerun = _rerun(tiny, storage, "--trials", "4")
    assert rerun.returncode == 0, rerun.stderr
    trials = _study(storage).get_trials()
    assert len([t for t in trials if t.state in FINISHED]) == 4 == len(trials)
    assert trials[victim.number].state in FINISHED and TrialRecord.of(trials[victim.number]).outcome != "interrupted"


def _workers_of(pid: int) -> list[int]:
    """The worker processes of an optimize process (multiprocessing's spawned children)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree from /proc")
def test_workers_of_a_killed_parent_stop_and_mark_their_trials(tiny, tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    proc = _start(tiny, storage, "--trials", "500", "--jobs", "2", "--lanes", "2")  # far more than the test waits
    _wait_mid_trial(storage, proc)
    workers = _workers_of(proc.pid)
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(_alive, workers))  # no orphan trains on beside the next run
    trials = _study(storage).get_trials()
    running_frozen = [t for t in trials if t.state == TrialState.RUNNING]
    running = [TrialRecord.of(t) for t in running_frozen]
    assert running and all(r.outcome == "interrupted" and "SIGTERM" in r.reason for r in running)
    finished = len([t for t in trials if t.state in FINISHED])
    assert finished < 500

    # Two fresh executors look for the orphans at once: each is taken over by one of them.
    rerun = _rerun(tiny, storage, "--trials", str(finished + 2), "--jobs", "2", "--lanes", "2")
    assert rerun.returncode == 0, rerun.stderr
    trials = _study(storage).get_trials()
    assert len([t for t in trials if t.state in FINISHED]) == finished + 2
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    # Each was taken over by one executor at a time: its generation is the latest claimed (or it
    # stepped back as surplus, if it had not started).
    storage_of = make_storage(storage)
    try:
        for t in running_frozen:
            claimed = latest(storage_of, trial_subject(trials[t.number]))
            assert taken_over(trials[t.number]) == (claimed or (0, ""))[0]
    finally:
        close_storage(storage_of)


def _stop_outside_a_write(pid: int, storage: str) -> None:
    """SIGSTOP `pid` at a moment it holds no write lock of the SQLite file (stopped inside a
    write, it would block every other writer for the busy timeout, 60 s)."""
    import sqlite3

    for _ in range(100):
        os.kill(pid, signal.SIGSTOP)
        try:
            with sqlite3.connect(storage[len("sqlite:///") :], timeout=0.5) as conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.rollback()
            return
        except sqlite3.OperationalError:  # it holds the lock: let it finish the write
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.05)
    pytest.fail("the worker never left its writes")


def _stop_a_worker_holding_a_trial(proc: subprocess.Popen, storage: str) -> int:
    """SIGSTOP one of two workers (one trial each at most) at a moment it holds a trial: two are
    RUNNING once it is stopped, so one is its own. (Stopped between ending a trial and asking for
    the next, it would hold none, nothing would go stale, and the other would finish the study
    alone: the CI failure after stop 27.)"""
    worker = _workers_of(proc.pid)[0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        _stop_outside_a_write(worker, storage)
        trials = _study(storage).get_trials(deepcopy=False)
        if sum(t.state == TrialState.RUNNING for t in trials) == 2:
            return worker
        os.kill(worker, signal.SIGCONT)
        time.sleep(0.1)
    pytest.fail("the worker never held a trial")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree from /proc")
def test_a_worker_stopped_past_the_grace_period_and_continued_duplicates_nothing(tiny, tmp_path):
    """SIGSTOP: its trials' heartbeats go stale and the other worker takes them over; SIGCONT:
    it lets them go (they were claimed after its own), and nothing is told twice or lost."""
    storage = f"sqlite:///{tmp_path}/s.db"
    proc = _start(tiny, storage, "--trials", "6", "--jobs", "2", "--lanes", "2")
    _wait_mid_trial(storage, proc)
    stopped = _stop_a_worker_holding_a_trial(proc, storage)
    try:
        deadline = time.monotonic() + 60
        while not any(taken_over(t) for t in _study(storage).get_trials(deepcopy=False)):
            assert time.monotonic() < deadline, "nothing was taken over"
            time.sleep(0.2)
    finally:
        os.kill(stopped, signal.SIGCONT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    trials = _study(storage).get_trials()
    assert [t.state for t in trials].count(TrialState.FAIL) == 0 and len(trials) == 6
    assert len([t for t in trials if t.state in FINISHED]) == 6 and not [
        t for t in trials if t.state == TrialState.RUNNING
    ]
    assert "Traceback" not in err


def _concurrent(tiny, storage, jobs, trials, name):
    result = run_cli(*tiny.optimize_args(storage, "--trials", str(trials), "--jobs", str(jobs), "--study", name))
    assert result.code == 0, result.err
    assert "database is locked" not in result.err
    password = sqlalchemy.engine.make_url(storage).password
    if password:  # the storage is named in what optimize prints, never with its password
        assert f":{password}@" not in result.out + result.err and ":***@" in result.err + result.out
    check = make_storage(storage)
    try:
        all_trials = optuna.load_study(study_name=name, storage=check).get_trials()
    finally:
        close_storage(check)
    finished = [t for t in all_trials if t.state in FINISHED]
    assert len(finished) == trials
    assert len({t.number for t in all_trials}) == len(all_trials)
    assert not [t for t in all_trials if t.state == TrialState.RUNNING]
    # The baseline is trained once, by whichever worker got trial 0 (an enqueued trial could
    # be popped by two workers at once on SQLite: optuna/optuna#4002).
    assert [t.number for t in all_trials if TrialRecord.of(t).baseline] == [0]
    return all_trials


def test_sqlite_four_jobs_forty_trials(tiny, tmp_path):
    _concurrent(tiny, f"sqlite:///{tmp_path}/s.db", 4, 40, "sqlite-40")


def _connections(url: str) -> int:
    """Connections to the test database other than this check's own."""
    import psycopg

    with psycopg.connect(url) as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        return conn.execute(query).fetchone()[0]


def test_postgres_eight_workers_forty_trials_no_leaks(tiny, postgres_url):
    baseline = _connections(postgres_url)
    name = f"pg-{uuid.uuid4().hex[:8]}"
    try:
        _concurrent(tiny, postgres_url, 8, 40, name)
        deadline = time.monotonic() + 30
        while _connections(postgres_url) > baseline and time.monotonic() < deadline:
            time.sleep(0.5)  # the server notices closed sockets asynchronously
        assert _connections(postgres_url) <= baseline
    finally:
        optuna.delete_study(study_name=name, storage=postgres_url)


@pytest.mark.parametrize(
    "error",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.00 GB)"),
        RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
    ],
    ids=["cuda", "mps", "cudnn"],
)
def test_out_of_memory_of_any_kind_fails_only_that_trial_and_frees_it(tiny, tmp_path, monkeypatch, error):
    real_run = search.run.lane_trial.TrainingRun
    runs, held = [], []

    class Flaky(real_run):
        def advance(self):
            if self is runs[0]:
                tensors = torch.zeros(1000)  # the trial's tensors, held by the failing frame
                held.append(weakref.ref(tensors))
                raise type(error)(*error.args)  # a fresh exception, as a real failure raises
            return super().advance()

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            runs.append(self)

    released = []
    monkeypatch.setattr(DevicePolicy, "release_memory", lambda self: released.append(held[0]() is None))
    monkeypatch.setattr(search.run.lane_trial, "TrainingRun", Flaky)
    storage = f"sqlite:///{tmp_path}/s.db"
    run_worker(worker_spec(tiny, storage, "oom", 3))
    trials = _study(storage, "oom").get_trials()
    assert [t.state for t in trials].count(TrialState.FAIL) == 1
    failed = TrialRecord.of(next(t for t in trials if t.state == TrialState.FAIL))
    assert failed.outcome == "out_of_memory" and str(error).split(".")[0] in failed.reason
    assert len([t for t in trials if t.state in FINISHED]) == 3
    # Memory was given back once, after the exception (and the tensors it held) was gone.
    assert released == [True]


def test_a_bug_in_training_is_not_taken_for_out_of_memory(tiny, tmp_path, monkeypatch):
    class Broken(search.run.lane_trial.TrainingRun):
        def advance(self):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(search.run.lane_trial, "TrainingRun", Broken)
    spec = worker_spec(tiny, f"sqlite:///{tmp_path}/s.db", "bug", 1)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        run_worker(spec)
