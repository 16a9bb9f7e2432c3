"""`lenet-search optimize` as one library call: prepare the study, run its trials (here or
in worker processes), and return how it went."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lenet.data import load_dataset, release
from lenet.device import policy_for
from search.confirm.pool import RunPool
from search.confirm.race import Confirmation, SeedRun
from search.confirm.racer import confirm
from search.records.study import waited_seconds
from search.records.trial import TrialRecord
from search.run.prepare import Hook, Prepared, prepare
from search.run.schedule import Schedule
from search.run.spec import OptimizeRequest, TrialNote, worker_placements
from search.run.stopping import Stop
from search.run.workers import Interrupted, TrialCallback, quiet_optuna, run_trials, run_workers, signal_handlers
from search.study.queries import best_completed, count_states, finished_count
from search.study.storage import close_storage

INTERRUPT_CODES = (130, 143)  # a worker ended by SIGINT or SIGTERM


@dataclass(frozen=True)
class OptimizeResult:
    """How an `optimize` run ended."""

    request: OptimizeRequest
    target: float
    counts: dict[str, int]  # the study's trials by state
    wall_seconds: float
    best: TrialRecord | None  # the fastest trial to the target, None if none reached it
    interrupted: int | None = None  # the exit code for the signal that stopped the run (130, 143)
    worker_codes: tuple[int, ...] = ()  # exit codes of worker processes (--jobs > 1)
    confirmation: Confirmation | None = None  # the race of the best candidates on fresh seeds
    confirm_seconds: float = 0.0  # wall time of the confirmation (part of wall_seconds)
    waited_seconds: float = 0.0  # this run's executors' waiting for other lanes, summed
    jobs: int = 1  # processes that executed the lanes
    stopped: str | None = None  # why the search stopped before its --trials (--patience), None if it did not

    @property
    def workers_failed(self) -> bool:
        return any(c != 0 for c in self.worker_codes) and self.interrupted is None


def optimize(
    request: OptimizeRequest,
    *,
    on_calibrate: Hook = None,
    on_clock: Hook = None,
    on_start: Callable[[Prepared], None] | None = None,
    on_trial: TrialCallback | None = None,
    on_confirm: Callable[[SeedRun], None] | None = None,
    trial_note: TrialNote | None = None,
) -> OptimizeResult:
    """Run the study to `request.n_trials` finished trials. Input the user can fix raises an
    InputError before anything is written; an interruption is returned, not raised."""
    quiet_optuna()
    prepared = prepare(request, on_calibrate, on_clock, trial_note)
    try:
        if on_start is not None:
            on_start(prepared)
        return _run(prepared, on_trial, on_confirm)
    finally:
        close_storage(prepared.storage)


def _run(
    prepared: Prepared, on_trial: TrialCallback | None, on_confirm: Callable[[SeedRun], None] | None
) -> OptimizeResult:
    spec, study = prepared.spec, prepared.study
    started, waited_before = time.monotonic(), waited_seconds(study)
    interrupted, codes, race, confirm_started, stop = None, (), None, None, None
    try:
        with signal_handlers():  # trials and confirmation: a signal ends them with a reason
            if spec.jobs == 1:
                run_trials(spec, spec.placements[0], study, on_trial)
            else:
                # The workers load their own copies; this process only watches.
                release(spec.device)
                policy_for(spec.device).release_memory()
                codes = tuple(run_workers(spec, study, on_trial))
                stopped = [c for c in codes if c in INTERRUPT_CODES]
                interrupted = stopped[0] if stopped else None
            finished, _ = finished_count(study)
            stop = _stop(prepared)
            if interrupted is None and not any(codes) and (finished >= spec.request.n_trials or stop is not None):
                confirm_started = time.monotonic()
                race = _confirm(prepared, on_confirm)
    except Interrupted as exc:
        interrupted = exc.exit_code
    except KeyboardInterrupt:
        interrupted = 130
    best = best_completed(study.get_trials(deepcopy=False))
    return OptimizeResult(
        request=prepared.request,
        target=spec.target,
        counts=count_states(study.get_trials(deepcopy=False)),
        wall_seconds=time.monotonic() - started,
        best=TrialRecord.of(best) if best else None,
        interrupted=interrupted,
        worker_codes=codes,
        confirmation=race,
        confirm_seconds=time.monotonic() - confirm_started if confirm_started else 0.0,
        waited_seconds=waited_seconds(study) - waited_before,
        jobs=spec.jobs,
        stopped=None if stop is None else stop.reason,
    )


def _stop(prepared: Prepared) -> Stop | None:
    """Whether the study's schedule stopped itself (--patience), as its executors judged it."""
    r = prepared.request
    if r.patience is None:
        return None
    return Schedule(prepared.study.get_trials(deepcopy=False), prepared.layout.lanes, r.n_trials, r.patience).stop


def _confirm(prepared: Prepared, on_run: Callable[[SeedRun], None] | None) -> Confirmation | None:
    """Race the best candidates on fresh seeds: in the study's lanes (helper processes with its
    threads per lane) when it has several, else in this process with all its cores."""
    r, spec, at, layout = prepared.request, prepared.spec, prepared.confirm_at, prepared.layout
    if r.confirm_top < 1:
        return None
    data = load_dataset(spec.request.data, at.device, val_size=spec.request.val_size)
    race = dict(top=r.confirm_top, n_seeds=r.confirm_seeds, on_run=on_run)
    if layout.lanes == 1 or layout.population > 1:  # a population study's processes are its cards' (or one CPU's)
        return confirm(prepared.study, data, threads=at.threads, **race)
    lanes = worker_placements(torch.device(spec.device), layout.lanes, layout.threads)
    with RunPool(lanes, spec.request.data, spec.request.val_size) as pool:
        return confirm(prepared.study, data, runs=pool, **race)
