"""Workers: running a study's trials to its total of finished trials, in this process or in
J worker processes.

`--trials N` means N finished (complete + pruned) trials in the study, whoever ran them: a
rerun after an interruption runs only the rest, and workers sharing a storage share the
count. Failed trials (a crash, a killed worker) do not count and are retried.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
import warnings
from collections.abc import Callable
from types import FrameType

import optuna
from optuna.trial import FrozenTrial

from lenet.data import load_dataset
from lenet.device import set_threads
from search.pruning.factory import make_pruner
from search.records.study import StudyRecord, study_record
from search.run.objective import Objective, SurplusTrial, TrialFailed
from search.run.spec import Placement, WorkerSpec
from search.study.opening import load_study
from search.study.queries import FINISHED, finished_count
from search.study.storage import GRACE_SECONDS, HEARTBEAT_SECONDS, close_storage, make_storage

TrialCallback = Callable[[FrozenTrial], None]


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.ERROR)  # catch=(SurplusTrial,) logs as a warning


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: the running trial is ended (FAIL, with the reason) and the run stops."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupted)


def run_worker(spec: WorkerSpec, worker_index: int = 0) -> None:
    """A worker process: its own storage, sampler and pruner, built once, then trials until
    the study has `spec.request.n_trials` finished ones (or the timeout passes)."""
    storage = make_storage(spec.request.storage_url)
    try:
        record = StudyRecord.of(storage.get_study_user_attrs(storage.get_study_id_from_name(spec.request.study_name)))
        assert record is not None  # the parent created or checked the study before starting workers
        study = load_study(
            spec.request.study_name,
            storage,
            record,
            sampler=spec.request.sampler,
            seed=spec.request.seed + worker_index,  # distinct proposals per worker, reproducible per worker
            pruner=make_pruner(spec.request.pruner, spec.target),
        )
        run_trials(spec, spec.placements[worker_index], study)
    finally:
        close_storage(storage)


def run_trials(
    spec: WorkerSpec, placement: Placement, study: optuna.Study, on_trial: TrialCallback | None = None
) -> None:
    """Run the study's trials in this process, at `placement`, until it has `spec.request.n_trials` finished ones."""
    quiet_optuna()
    install_signal_handlers()
    threads = set_threads(placement.threads) if placement.threads is not None else None
    data = load_dataset(
        spec.request.data, placement.device, val_size=spec.request.val_size
    )  # the resident copy, if loaded already
    record = study_record(study)
    objective = Objective(
        spec.space,
        spec.target,
        data,
        spec.request.seed,
        spec.request.n_trials,
        threads,
        baseline=record is not None and record.baseline is not None,
        clock=record.step_clock() if record is not None else None,
        trial_note=spec.trial_note,
    )
    callbacks = [lambda _study, trial: on_trial(trial)] if on_trial else []
    deadline = None if spec.request.timeout is None else time.monotonic() + spec.request.timeout
    settle_until = None
    while deadline is None or time.monotonic() < deadline:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial: FAIL, then retried
        done, running = finished_count(study)
        if done >= spec.request.n_trials:
            # Counting never lets a live worker run past N, so a trial still RUNNING now was
            # left by a killed worker: wait for its heartbeat to go stale so that it is
            # marked FAIL rather than left RUNNING, but no longer than the grace period.
            settle_until = settle_until or time.monotonic() + GRACE_SECONDS + HEARTBEAT_SECONDS
            if running == 0 or time.monotonic() > settle_until:
                return
            time.sleep(1.0)
            continue
        if done + running >= spec.request.n_trials:
            time.sleep(1.0)  # the last trials are running elsewhere; they may still fail
            continue
        study.optimize(
            objective, n_trials=1, catch=(SurplusTrial, TrialFailed), callbacks=callbacks, gc_after_trial=False
        )


def _worker_main(spec: WorkerSpec, worker_index: int) -> None:
    try:
        run_worker(spec, worker_index)
    except Interrupted as exc:
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def run_workers(
    spec: WorkerSpec, study: optuna.Study, on_trial: TrialCallback | None = None, poll_seconds: float = 1.0
) -> list[int]:
    """Start `spec.jobs` worker processes on the study and report finished trials as they appear
    (read through `study`, this process's own).

    Processes, not threads (the GIL), each with its share of the cores. Returns the workers'
    exit codes.
    """
    ctx = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state, no shared DB connections
    workers = [ctx.Process(target=_worker_main, args=(spec, i), name=f"lenet-worker-{i}") for i in range(spec.jobs)]
    for w in workers:
        w.start()
    install_signal_handlers()
    seen = {t.number for t in study.get_trials(deepcopy=False, states=FINISHED)}
    try:
        while True:
            alive = any(w.is_alive() for w in workers)
            for t in study.get_trials(deepcopy=False, states=FINISHED):
                if t.number not in seen:
                    seen.add(t.number)
                    if on_trial:
                        on_trial(t)
            if not alive:
                break
            time.sleep(poll_seconds)
    except Interrupted:
        # Ctrl-C reaches the workers too (same process group); a SIGTERM to this process
        # alone is passed on, so that every worker ends its trial with a reason.
        for w in workers:
            if w.is_alive():
                w.terminate()
        for w in workers:
            w.join(timeout=60)
        raise
    for w in workers:
        w.join()
    return [w.exitcode if w.exitcode is not None else -1 for w in workers]
