"""Workers: executing a study's schedule to its total of finished trials, in this process or in
J worker processes (search/run/executor.py does the work; here are the processes and signals).

`--trials N` means N finished (complete + pruned) trials in the study, whoever ran them: a
rerun after an interruption runs only the rest, and workers sharing a storage share the
count. A trial whose worker died or was interrupted is taken over, never lost.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import optuna

from lenet.errors import InputError
from search.pruning.factory import make_pruner
from search.records.study import StudyRecord, save_waited, study_record
from search.run.executor import Executor, TrialCallback
from search.run.spec import Placement, WorkerSpec
from search.study.opening import load_study
from search.study.queries import FINISHED
from search.study.storage import close_storage, make_storage


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.ERROR)  # catch=(SurplusTrial,) logs as a warning


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: the running trials stop where they are (marked, to be taken over) and the run stops."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


def _storage_code() -> tuple[str, ...]:
    """The folders of the code that talks to the database: a signal is not raised inside it."""
    import sqlite3

    import optuna.storages
    import sqlalchemy

    modules = [sqlalchemy, sqlite3, optuna.storages]
    try:
        import psycopg

        modules.append(psycopg)
    except ImportError:  # PostgreSQL's driver is an optional extra
        pass
    return tuple(os.path.dirname(m.__file__) + os.sep for m in modules if m.__file__)


_STORAGE_CODE = _storage_code()
_RETRY_SECONDS = 0.02  # how soon a signal that arrived inside a storage call is tried again
_DEFER_SECONDS = 5.0  # a storage call that hangs longer (a lost server) is interrupted anyway
_pending_signum: int | None = None
_pending_since = 0.0


def _in_storage_call(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith(_STORAGE_CODE):
            return True
        frame = frame.f_back
    return False


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    """Raise Interrupted where the signal lands, except inside a storage call: raised there it
    breaks the commit (StorageInternalError) or is swallowed by a garbage-collector callback
    in SQLAlchemy (the run goes on), so it waits for the call to return (tried again by SIGALRM)."""
    global _pending_signum, _pending_since
    if _pending_signum is None:
        _pending_since = time.monotonic()
    if _in_storage_call(frame) and time.monotonic() - _pending_since < _DEFER_SECONDS:
        _pending_signum = signum
        signal.setitimer(signal.ITIMER_REAL, _RETRY_SECONDS)
        return
    _pending_signum = None
    raise Interrupted(signum)


def _retry_pending(signum: int, frame: FrameType | None) -> None:
    if _pending_signum is not None:
        _raise_interrupted(_pending_signum, frame)


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)


@contextmanager
def signal_handlers() -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted (SIGALRM retries one that came inside a storage
    call) while the block runs; the handlers before it are restored after."""
    global _pending_signum
    saved = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGALRM, _retry_pending)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        pending, _pending_signum = _pending_signum, None
        if pending is not None and sys.exc_info()[0] is None:
            raise Interrupted(pending)  # it came inside the block's last storage call: not lost


def run_worker(spec: WorkerSpec, worker_index: int = 0) -> None:
    """A worker process: its own storage, sampler and pruner, built once, then its share of the
    schedule until the study has `spec.request.n_trials` finished trials."""
    storage = make_storage(spec.request.storage_url)
    try:
        record = StudyRecord.of(storage.get_study_user_attrs(storage.get_study_id_from_name(spec.request.study_name)))
        assert record is not None  # the parent created or checked the study before starting workers
        study = load_study(
            spec.request.study_name,
            storage,
            record,
            sampler=spec.request.sampler,
            seed=spec.request.seed,
            pruner=make_pruner(spec.request.pruner, spec.target, spec.space.max_epochs),
        )
        run_trials(spec, spec.placements[worker_index], study)
    finally:
        close_storage(storage)


def run_trials(
    spec: WorkerSpec, placement: Placement, study: optuna.Study, on_trial: TrialCallback | None = None
) -> float:
    """Execute the study's schedule in this process, at `placement`, until it has
    `spec.request.n_trials` finished trials; returns the seconds it waited for other lanes."""
    quiet_optuna()
    record = study_record(study)
    assert record is not None
    executor = Executor(spec, placement, study, record, math.ceil(record.lanes / spec.jobs), on_trial)
    try:
        executor.run()
    finally:
        save_waited(study, executor.waited)
    return executor.waited


PARENT_POLL_SECONDS = 1.0  # how soon a worker notices that its parent is gone


def _die_with_parent(parent: int) -> None:
    """A worker whose parent is gone (killed with SIGKILL) stops as if terminated: its trial is
    marked interrupted, for the next run to take over, instead of training on beside that run."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="lenet-parent-watch", daemon=True).start()


REFUSED = 2  # a worker's exit code when it stopped on a refusal (the storage gone for good, say)


def _worker_main(spec: WorkerSpec, worker_index: int, parent: int, refusals: Any) -> None:
    try:
        with signal_handlers():
            _die_with_parent(parent)
            run_worker(spec, worker_index)
    except InputError as exc:  # the parent says it, in one line
        refusals.put(str(exc))
        raise SystemExit(REFUSED) from None
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
    exit codes; a worker's refusal (an InputError: the storage gone for good, say) is raised here.
    """
    ctx = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state, no shared DB connections
    refusals = ctx.SimpleQueue()
    workers = [
        ctx.Process(target=_worker_main, args=(spec, i, os.getpid(), refusals), name=f"lenet-worker-{i}")
        for i in range(spec.jobs)
    ]
    for w in workers:
        w.start()
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
            if not refusals.empty():  # one worker cannot go on (the storage gone): stop the others
                for w in workers:
                    if w.is_alive():
                        w.terminate()
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
    if not refusals.empty():
        raise InputError(refusals.get())
    return [w.exitcode if w.exitcode is not None else -1 for w in workers]
