"""`lenet-search optimize` as one library call: prepare the study, run its trials (here or
in worker processes), and return how it went."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lenet.data import release
from lenet.device import policy_for
from search.prepare import OptimizeRequest, Prepared, prepare
from search.record import TrialRecord
from search.storage import close_storage
from search.trials import best_completed, count_states
from search.workers import Interrupted, TrialCallback, quiet_optuna, run_trials, run_workers

INTERRUPT_CODES = (130, 143)  # a worker ended by SIGINT or SIGTERM


@dataclass(frozen=True)
class StudyOutcome:
    """How an `optimize` run ended."""

    request: OptimizeRequest
    target: float
    counts: dict[str, int]  # the study's trials by state
    wall_seconds: float
    best: TrialRecord | None  # the fastest trial to the target, None if none reached it
    interrupted: int | None = None  # the exit code for the signal that stopped the run (130, 143)
    worker_codes: tuple[int, ...] = ()  # exit codes of worker processes (--jobs > 1)

    @property
    def workers_failed(self) -> bool:
        return any(c != 0 for c in self.worker_codes) and self.interrupted is None


def optimize(
    request: OptimizeRequest,
    *,
    on_calibrate: Callable[[], None] | None = None,
    on_clock: Callable[[], None] | None = None,
    on_start: Callable[[Prepared], None] | None = None,
    on_trial: TrialCallback | None = None,
) -> StudyOutcome:
    """Run the study to `request.n_trials` finished trials. Input the user can fix raises an
    InputError before anything is written; an interruption is returned, not raised."""
    quiet_optuna()
    prepared = prepare(request, on_calibrate, on_clock)
    try:
        if on_start is not None:
            on_start(prepared)
        return _run(prepared, on_trial)
    finally:
        close_storage(prepared.storage)


def _run(prepared: Prepared, on_trial: TrialCallback | None) -> StudyOutcome:
    spec, study = prepared.spec, prepared.study
    jobs = prepared.request.jobs
    started = time.monotonic()
    interrupted, codes = None, ()
    try:
        if jobs == 1:
            run_trials(spec, study, on_trial)
        else:
            # The workers load their own copies; this process only watches.
            release(spec.device)
            policy_for(spec.device).release_memory()
            codes = tuple(run_workers(spec, jobs, study, on_trial))
            stopped = [c for c in codes if c in INTERRUPT_CODES]
            interrupted = stopped[0] if stopped else None
    except Interrupted as exc:
        interrupted = exc.exit_code
    except KeyboardInterrupt:
        interrupted = 130
    best = best_completed(study.get_trials(deepcopy=False))
    return StudyOutcome(
        request=prepared.request,
        target=spec.target,
        counts=count_states(study),
        wall_seconds=time.monotonic() - started,
        best=TrialRecord.of(best) if best else None,
        interrupted=interrupted,
        worker_codes=codes,
    )
