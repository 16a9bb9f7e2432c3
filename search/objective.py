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
import torch

from lenet.data import DeviceData
from lenet.train import EvalRecord, TrainConfig, train
from search.baseline import BASELINE_ATTR, BASELINE_TRIAL, baseline_of
from search.capped import CAPPED_ATTR
from search.pruner import CURVE_ATTR, Decision, SaturationPruner
from search.provenance import library_versions
from search.space import SearchSpace
from search.study import FINISHED


class SurplusTrial(Exception):
    """Raised when concurrent workers together started more trials than the study needs."""


class TrialFailed(Exception):
    """This trial failed (e.g. CUDA out of memory) with a recorded reason; the study goes on."""


@dataclass
class Objective:
    space: SearchSpace
    target: float
    data: DeviceData
    seed: int
    n_trials: int  # the study's total of finished trials
    threads: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        self._check_surplus(trial)
        config = self.space.sample(trial, TrainConfig(seed=self.seed))
        info = {
            "config": config.to_dict(),
            "target": self.target,
            "seed": config.seed,
            "device": str(self.data.device),
            "threads": self.threads or 0,
            "data_checksum": self.data.checksum,
            "versions": library_versions(),
        }
        if trial.number == BASELINE_TRIAL and baseline_of(trial.study.user_attrs):
            info[BASELINE_ATTR] = True
        for key, value in info.items():
            trial.set_user_attr(key, value)

        curve: list[dict[str, float]] = []
        pruned: list[Decision] = []  # why it was stopped early, if it was

        def on_eval(record: EvalRecord) -> str | None:
            curve.append(record.to_dict())
            if record.epoch.is_integer():
                # Intermediate values by epoch, for the dashboard's curves and Optuna's pruners;
                # the evaluations within an epoch are in the curve, for this project's pruner.
                trial.report(1.0 - record.val_accuracy, step=int(record.epoch))
            trial.set_user_attr(CURVE_ATTR, curve)
            if record.val_accuracy >= self.target:
                return "reached the target"
            if trial.should_prune():
                pruned.append(self._explain(trial.study, trial.number, record))
                return pruned[-1].reason
            return None

        try:
            result = train(config, self.data, on_eval=on_eval, threads=self.threads)
        except torch.cuda.OutOfMemoryError as exc:
            self._record_failure(trial, "out_of_memory", f"CUDA out of memory at batch size {config.batch_size}: "
                                 f"{str(exc).splitlines()[0]}")  # fmt: skip
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise TrialFailed(f"CUDA out of memory at batch size {config.batch_size}") from None
        except KeyboardInterrupt as exc:
            what = str(exc) or "SIGINT"
            self._record_failure(trial, "interrupted", f"interrupted by {what} after {len(curve)} evaluations; "
                                 "the trial does not count and the study resumes where it stopped")  # fmt: skip
            raise
        reached = result.first_reaching(self.target)
        last = result.history[-1] if result.history else None
        summary = {
            "best_val_accuracy": result.best_val_accuracy,
            "epochs": last.epoch if last else 0.0,
            "train_seconds": result.train_seconds,
            "seconds_to_target": reached.train_seconds if reached else None,
            "epochs_to_target": reached.epoch if reached else None,
            "images_to_target": reached.images if reached else None,
            # cannot_win: its time to target is at least this (search/capped.py)
            CAPPED_ATTR: pruned[-1].cap if pruned else None,
        }
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
        summary.update(outcome=rule, reason=reason)
        for key, value in summary.items():
            trial.set_user_attr(key, value)
        self._note(trial, summary)
        if reached is None:
            raise optuna.TrialPruned(reason)
        return reached.train_seconds

    def _note(self, trial: optuna.Trial, summary: dict) -> None:
        """A note on the trial's dashboard page: how it ended and why, against which target."""
        import optuna_dashboard

        to_target = summary["seconds_to_target"]
        lines = [
            f"**Outcome**: {summary['outcome']}: {summary['reason']}",
            f"**Target** validation accuracy {self.target:.4f}: "
            + (f"reached after {to_target:.1f} s of training" if to_target is not None else "not reached"),
            f"Best validation accuracy {summary['best_val_accuracy']:.4f} after {summary['epochs']:.4g} epochs, "
            f"{summary['train_seconds']:.1f} s of training on {self.data.device}.",
        ]
        optuna_dashboard.save_note(trial, "\n\n".join(lines))

    @staticmethod
    def _record_failure(trial: optuna.Trial, outcome: str, reason: str) -> None:
        trial.set_user_attr("outcome", outcome)
        trial.set_user_attr("reason", reason)

    def _check_surplus(self, trial: optuna.Trial) -> None:
        """Workers check the count before asking for a trial; two that asked at once may
        overshoot, and the later trial (by number) then steps back without training."""
        ahead = trial.study.get_trials(deepcopy=False, states=(*FINISHED, optuna.trial.TrialState.RUNNING))
        if sum(1 for t in ahead if t.number < trial.number) >= self.n_trials:
            self._record_failure(trial, "surplus", f"surplus: the study already had {self.n_trials} trials")
            raise SurplusTrial(f"the study already has {self.n_trials} trials")

    @staticmethod
    def _explain(study: optuna.Study, number: int, record: EvalRecord) -> Decision:
        pruner = study.pruner
        if isinstance(pruner, SaturationPruner) and number in pruner.reasons:
            return pruner.reasons.pop(number)
        name = type(pruner).__name__.removesuffix("Pruner").lower()
        reason = (
            f"{name} pruner: validation error {1 - record.val_accuracy:.4f} at epoch {record.epoch:.4g} "
            f"({record.train_seconds:.1f} s)"
        )
        return Decision(name, reason)
