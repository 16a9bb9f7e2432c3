"""The Optuna objective: training seconds until validation accuracy first reaches the target.

A trial that reaches the target COMPLETEs with that time as its value. A trial that does not
(pruned early, diverged, or out of epochs) ends PRUNED with its reason: it never looks best,
since only completed trials have values, and TPE still learns from it, ranking pruned trials
after completed ones by how far they got (their last reported validation error), except the
near misses the cannot-win rule stopped, which it sees at their cap (search/capped.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from lenet.data import DeviceData
from lenet.device import is_out_of_memory, policy_for
from lenet.clock import StepClock, seconds_of
from lenet.train import EvalRecord, TrainConfig, crossing, train
from search.baseline import BASELINE_TRIAL
from search.dashboard import save_trial_note
from search.provenance import library_versions
from search.pruner import Decision, explain
from search.record import CLOCK_SECONDS, TrialResult, TrialSetup, write_curve, write_failure
from search.space import SearchSpace
from search.trials import FINISHED


class SurplusTrial(Exception):
    """Raised when concurrent workers together started more trials than the study needs."""


class TrialFailed(Exception):
    """This trial failed (out of device memory) with a recorded reason; the study goes on."""


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

        curve: list[dict[str, float]] = []
        pruned: list[Decision] = []  # why it was stopped early, if it was

        def seconds(record: EvalRecord) -> float:
            """The record's training time in the study's clock."""
            return seconds_of(self.clock, config, record)

        def on_eval(record: EvalRecord) -> str | None:
            curve.append({**record.to_dict(), CLOCK_SECONDS: seconds(record)})
            if record.epoch.is_integer():
                # Intermediate values by epoch, for the dashboard's curves and Optuna's pruners;
                # the evaluations within an epoch are in the curve, for this project's pruner.
                trial.report(1.0 - record.val_accuracy, step=int(record.epoch))
            write_curve(trial, curve)
            if record.val_accuracy >= self.target:
                return "reached the target"
            if trial.should_prune():
                pruned.append(explain(trial.study.pruner, trial.number, curve[-1]))
                return pruned[-1].reason
            return None

        out_of_memory = None
        try:
            result = train(config, self.data, on_eval=on_eval, threads=self.threads, policy=self.policy)
        except KeyboardInterrupt as exc:
            what = str(exc) or "SIGINT"
            write_failure(trial, "interrupted", f"interrupted by {what} after {len(curve)} evaluations; "
                          "the trial does not count and the study resumes where it stopped")  # fmt: skip
            raise
        except Exception as exc:  # out of memory of any kind fails only this trial
            if not is_out_of_memory(exc):
                raise
            out_of_memory = f"{type(exc).__name__} at batch size {config.batch_size}: {str(exc).splitlines()[0]}"
        if out_of_memory is not None:
            # Here, not in the except block: the exception's traceback held the trial's tensors.
            self.policy.release_memory()
            write_failure(trial, "out_of_memory", f"out of memory: {out_of_memory}")
            raise TrialFailed(out_of_memory)
        summary = result.summary(self.target)
        cross = crossing(result.history, self.target)
        reached = cross.after if cross else None
        if reached is not None:
            rule, reason = "reached", f"reached {reached.val_accuracy:.4f} >= {self.target:.4f} at epoch {reached.epoch:.4g}"
        elif result.outcome == "diverged":
            rule, reason = "diverged", f"diverged: {result.reason}"
        elif pruned:
            rule, reason = pruned[-1].rule, pruned[-1].reason
        else:
            rule, reason = "budget", (
                f"out of budget: best validation accuracy {result.best_val_accuracy:.4f} after "
                f"{config.max_epochs} epochs, below the target {self.target:.4f}"
            )
        # cannot_win: its time to target is at least its cap (search/capped.py)
        to_target = cross.interpolate(seconds) if cross else None
        ended = TrialResult.of(summary, rule, reason, clock_seconds=seconds(result.history[-1]) if result.history else 0.0,
                               seconds_to_target=to_target, capped_at=pruned[-1].cap if pruned else None)  # fmt: skip
        ended.write(trial)
        save_trial_note(trial, ended, self.target, str(self.data.device))
        if to_target is None:
            # No value for a trial that missed the target: Optuna would store its last
            # intermediate value (a validation error, near 0) as its value, and optuna-dashboard
            # would plot it far below the winner. A NaN after the last step leaves it none.
            trial.report(float("nan"), step=int(result.history[-1].epoch) + 1 if result.history else 1)
            raise optuna.TrialPruned(reason)
        return to_target

    def _check_surplus(self, trial: optuna.Trial) -> None:
        """Workers check the count before asking for a trial; two that asked at once may
        overshoot, and the later trial (by number) then steps back without training."""
        ahead = trial.study.get_trials(deepcopy=False, states=(*FINISHED, optuna.trial.TrialState.RUNNING))
        if sum(1 for t in ahead if t.number < trial.number) >= self.n_trials:
            write_failure(trial, "surplus", f"surplus: the study already had {self.n_trials} trials")
            raise SurplusTrial(f"the study already has {self.n_trials} trials")
