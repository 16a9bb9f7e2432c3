"""What `optimize` shows while it runs: one study bar and one line per finished trial."""

from __future__ import annotations

import sys

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from search.pruning.curves import epochs_text
from search.records.trial import TrialRecord
from search.study.queries import FINISHED

PARAM_LABELS = {"lr": "lr", "batch_size": "bs", "step_size": "step", "gamma": "gamma", "momentum": "mom"}


def format_params(params: dict) -> str:
    parts = []
    for name, value in params.items():
        label = PARAM_LABELS.get(name, name)
        parts.append(f"{label} {value:.4g}" if isinstance(value, float) else f"{label} {value}")
    return " ".join(parts)


def format_trial_line(t: FrozenTrial) -> str:
    r = TrialRecord.of(t)
    state = "done" if t.state == TrialState.COMPLETE else t.state.name.lower()
    params = format_params(t.params)
    progress = f"{epochs_text(r.epochs)}, {r.measured_seconds:.1f} s"
    if r.best_val_accuracy is not None:
        progress += f", best val {r.best_val_accuracy:.4f}"
    head = f"trial {t.number:>3} {state:<7}"
    if r.value is not None:
        head += f" {r.value:6.1f} s to target"
    reason = r.reason
    if r.baseline:
        reason = f"baseline (train's defaults): {reason}"
    elif r.warm_start:
        reason = f"warm start ({r.warm_start}): {reason}"
    return f"{head} | {params} | {progress} | {reason}"


class StudyProgress:
    """A tqdm bar over the study's finished trials (pruned count, best time so far), and a
    line per finished trial; silent with quiet=True."""

    def __init__(self, n_trials: int, already: list[FrozenTrial], quiet: bool = False) -> None:
        self.quiet = quiet
        self.pruned = sum(1 for t in already if t.state == TrialState.PRUNED)
        values = [t.value for t in already if t.state == TrialState.COMPLETE and t.value is not None]
        self.best = min(values, default=None)
        self.bar = None
        if not quiet:
            self.bar = tqdm(
                total=n_trials,
                initial=min(len(already), n_trials),
                desc="study",
                unit="trial",
                file=sys.stderr,
                dynamic_ncols=True,
            )
            self._postfix()

    @classmethod
    def of(cls, study: optuna.Study, n_trials: int, quiet: bool = False) -> StudyProgress:
        """Progress of `study` towards `n_trials`, counting the trials it has finished already."""
        return cls(n_trials, study.get_trials(deepcopy=False, states=FINISHED), quiet=quiet)

    def _postfix(self) -> None:
        if self.bar is not None:
            best = f"{self.best:.1f}s" if self.best is not None else "-"
            self.bar.set_postfix_str(f"pruned {self.pruned}, best {best}")

    def trial_finished(self, t: FrozenTrial) -> None:
        if t.state == TrialState.PRUNED:
            self.pruned += 1
        elif t.state == TrialState.COMPLETE and t.value is not None:
            self.best = t.value if self.best is None else min(self.best, t.value)
        else:
            return  # a surplus or failed trial does not count
        if self.bar is not None:
            self.bar.write(format_trial_line(t), file=sys.stderr)
            self.bar.update(1)
            self._postfix()

    def write(self, line: str) -> None:
        """A line above the bar (below it once the bar is closed)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
