"""The Optuna objective: training seconds until validation accuracy first reaches the target.

A trial that reaches the target COMPLETEs with that time as its value. A trial that does not
(pruned early, diverged, or out of epochs) ends PRUNED with its reason: it never looks best,
since only completed trials have values, and TPE still learns from it, ranking pruned trials
after completed ones by how far they got (their last reported validation error), except the
near misses the cannot-win rule stopped, which it sees at their cap (search/sampling/capped.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from lenet.clock import StepClock
from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from lenet.data import DeviceData
from lenet.device import is_out_of_memory, policy_for
from lenet.train import TrainResult, train
from search.clock.pricing import clock_seconds, time_to_target
from search.pruning.decision import Decision, explain
from search.records.provenance import library_versions
from search.records.trial import TrialResult, TrialSetup, curve_point, write_curve, write_failure
from search.run.spec import TrialNote
from search.sampling.baseline import BASELINE_TRIAL
from search.space import SearchSpace
from search.study.queries import FINISHED


class SurplusTrial(Exception):
    """Raised when concurrent workers together started more trials than the study needs."""


class TrialFailed(Exception):
    """This trial failed (out of device memory) with a recorded reason; the study goes on."""


class _Watch:
    """The trial's view of its training, called at every evaluation: it writes the curve,
    reports the epoch's validation error, and stops training at the target or when pruned."""

    def __init__(self, trial: optuna.Trial, config: TrainConfig, target: float, clock: StepClock | None) -> None:
        self.trial, self.config, self.target, self.clock = trial, config, target, clock
        self.curve: list[dict[str, float]] = []
        self.pruned: Decision | None = None  # why it was stopped early, if it was

    def __call__(self, record: EvalRecord) -> str | None:
        self.curve.append(curve_point(record, clock_seconds(self.clock, self.config, record)))
        if record.epoch.is_integer():
            # Intermediate values by epoch, for the dashboard's curves and Optuna's pruners;
            # the evaluations within an epoch are in the curve, for this project's pruner.
            self.trial.report(1.0 - record.val_accuracy, step=int(record.epoch))
        write_curve(self.trial, self.curve)
        if record.val_accuracy >= self.target:
            return "reached the target"
        if self.trial.should_prune():
            self.pruned = explain(self.trial.study.pruner, self.trial.number, self.curve[-1])
            return self.pruned.reason
        return None


@dataclass
class Objective:
    space: SearchSpace
    target: float
    data: DeviceData
    seed: int
    n_trials: int  # the study's total of finished trials
    threads: int | None = None
    baseline: bool = False  # the study has a baseline: trial 0 trains it
    clock: StepClock | None = None  # the study's step clock; None: measured seconds
    trial_note: TrialNote | None = None

    def __post_init__(self) -> None:
        self.policy = policy_for(self.data.device)  # built once per worker

    def __call__(self, trial: optuna.Trial) -> float:
        self._check_surplus(trial)
        config = self.space.sample(trial, TrainConfig(seed=self.seed))
        TrialSetup(
            config=config,
            target=self.target,
            device=str(self.data.device),
            threads=self.threads or 0,
            data_checksum=self.data.checksum,
            versions=library_versions(),
            baseline=self.baseline and trial.number == BASELINE_TRIAL,
        ).write(trial)
        watch = _Watch(trial, config, self.target, self.clock)
        ended = self._ending(self._train(trial, config, watch), watch.pruned)
        ended.write(trial)
        if self.trial_note is not None:
            self.trial_note(trial, ended, self.target, str(self.data.device))
        if ended.clock_seconds_to_target is None:
            # No value for a trial that missed the target: Optuna would store its last
            # intermediate value (a validation error, near 0) as its value, and optuna-dashboard
            # would plot it far below the winner. A NaN after the last step leaves it none.
            trial.report(float("nan"), step=int(ended.epochs) + 1)
            raise optuna.TrialPruned(ended.reason)
        return ended.clock_seconds_to_target

    def _train(self, trial: optuna.Trial, config: TrainConfig, watch: _Watch) -> TrainResult:
        """Train the trial; an interruption is recorded and raised, running out of device
        memory fails only this trial (TrialFailed)."""
        out_of_memory = None
        try:
            return train(config, self.data, on_eval=watch, threads=self.threads, policy=self.policy)
        except KeyboardInterrupt as exc:
            what = str(exc) or "SIGINT"
            write_failure(
                trial,
                "interrupted",
                f"interrupted by {what} after {len(watch.curve)} evaluations; "
                "the trial does not count and the study resumes where it stopped",
            )
            raise
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            out_of_memory = f"{type(exc).__name__} at batch size {config.batch_size}: {str(exc).splitlines()[0]}"
        # Here, not in the except block: the exception's traceback held the trial's tensors.
        self.policy.release_memory()
        write_failure(trial, "out_of_memory", f"out of memory: {out_of_memory}")
        raise TrialFailed(out_of_memory)

    def _ending(self, result: TrainResult, pruned: Decision | None) -> TrialResult:
        """How the trial ended: its figures in both clocks, its outcome and the reason."""
        config = result.config
        reached = time_to_target(result.history, self.target, config, self.clock)
        if reached is not None:
            first = reached.evaluation
            rule, reason = (
                "reached",
                f"reached {first.val_accuracy:.4f} >= {self.target:.4f} at epoch {first.epoch:.4g}",
            )
        elif result.status == "diverged":
            rule, reason = "diverged", f"diverged: {result.reason}"
        elif pruned is not None:
            rule, reason = pruned.rule, pruned.reason
        else:
            rule, reason = (
                "budget",
                (
                    f"out of budget: best validation accuracy {result.best_val_accuracy:.4f} after "
                    f"{config.max_epochs} epochs, below the target {self.target:.4f}"
                ),
            )
        return TrialResult(
            best_val_accuracy=result.best_val_accuracy,
            epochs=result.epochs,
            measured_seconds=result.train_seconds,
            clock_seconds=clock_seconds(self.clock, config, result.history[-1]) if result.history else 0.0,
            clock_seconds_to_target=reached.clock_seconds if reached else None,
            measured_seconds_to_target=reached.measured_seconds if reached else None,
            epochs_to_target=reached.epochs if reached else None,
            images_to_target=reached.images if reached else None,
            capped_at=pruned.cap if pruned is not None else None,  # cannot_win: its time to target is at least this
            outcome=rule,
            reason=reason,
        )

    def _check_surplus(self, trial: optuna.Trial) -> None:
        """Workers check the count before asking for a trial; two that asked at once may
        overshoot, and the later trial (by number) then steps back without training."""
        ahead = trial.study.get_trials(deepcopy=False, states=(*FINISHED, optuna.trial.TrialState.RUNNING))
        if sum(1 for t in ahead if t.number < trial.number) >= self.n_trials:
            write_failure(trial, "surplus", f"surplus: the study already had {self.n_trials} trials")
            raise SurplusTrial(f"the study already has {self.n_trials} trials")
