"""Sampling each trial as of its place in the study's schedule, whichever process asks.

Once a trial's start in the schedule is decided, the executor says which trials it sees (those
that had ended in the study's clock by its start, and those running then; search/run/schedule.py)
before the trial draws its parameters. The base sampler, built afresh for the trial and seeded by
the study's seed and the trial's number, samples from that view: so a trial's parameters depend
on the study's seed, its number and what it sees, never on the process that runs it or on what
has finished on the machine meanwhile.

The first trials have their parameters fixed instead: another study's best schedules when the
study is warm-started (search/run/warm.py), then the study's baseline, a known-good schedule, so
that the pruner has a time to beat from the first minute (Ray Tune's `points_to_evaluate`).
TPE's other startup trials, which it would draw at random, are a Latin hypercube over the space
(first_design.py), so that its model starts from every batch size and every part of the ranges.
(Not `study.enqueue_trial`: SQLite ignores `SELECT ... FOR UPDATE`, so two processes can pop one
enqueued trial and train it twice, optuna/optuna#4002.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from search.records.keys import WARM_PARAMS, WARM_SOURCE
from search.sampling.factory import TPE_STARTUP_TRIALS, make_sampler
from search.sampling.first_design import design_value
from search.space import contains
from search.study.view import StudyView


def slot_seed(study_seed: int, slot: int) -> int:
    """The base sampler's seed for trial number `slot`: the same for the same study seed, on any host."""
    return int(np.random.SeedSequence([study_seed % 2**32, slot]).generate_state(1)[0])


class ScheduledSampler(BaseSampler):
    """Sampler `name` per trial of the schedule (see the module docstring). `begin()` says what the
    trial about to draw its parameters sees; without it, the sampler samples from the study as it is."""

    def __init__(
        self,
        name: str,
        study_seed: int,
        baseline: Mapping[str, Any] | None = None,
        warm_start: Sequence[Mapping[str, Any]] = (),  # StudyRecord.warm_start
    ) -> None:
        self.name, self.study_seed, self.baseline = name, study_seed, dict(baseline or {})
        self.warm_start = [dict(w[WARM_PARAMS]) for w in warm_start]
        self.warm_sources = [w.get(WARM_SOURCE) for w in warm_start]
        self._slot: int | None = None
        self._seen: list[FrozenTrial] | None = None
        self._fixed: dict[str, Any] = {}
        self._design: tuple[int, int] | None = None
        self._base = make_sampler(name, study_seed)

    def begin(self, study: optuna.Study, trial: FrozenTrial, seen: Sequence[FrozenTrial]) -> None:
        """`trial` draws its parameters next, seeing `seen`."""
        slot = trial.number
        self._slot, self._seen = slot, list(seen)
        self._fixed = self.fixed(slot)[0]
        self._design = self.design_place(slot)
        # QMC's sequence is one for the study (its scramble is the seed); the others draw per trial.
        seed = self.study_seed if self.name == "qmc" else slot_seed(self.study_seed, slot)
        self._base = make_sampler(self.name, seed)
        self._base.before_trial(self._view(study), trial)

    @property
    def baseline_slot(self) -> int | None:
        """The trial that trains the baseline: after the warm start's, if the study has one."""
        return len(self.warm_start) if self.baseline else None

    def fixed(self, slot: int) -> tuple[dict[str, Any], str | None]:
        """Trial `slot`'s fixed parameters and why ("warm start", "baseline"; empty and None: drawn)."""
        if slot < len(self.warm_start):
            return self.warm_start[slot], "warm start"
        if slot == self.baseline_slot:
            return self.baseline, "baseline"
        return {}, None

    def design_place(self, slot: int) -> tuple[int, int] | None:
        """Trial `slot`'s place in TPE's first design, (index, size), or None where it draws
        otherwise: fixed, past TPE's startup, or another sampler."""
        first = len(self.warm_start) + (1 if self.baseline else 0)
        if self.name != "tpe" or not first <= slot < TPE_STARTUP_TRIALS:
            return None
        return slot - first, TPE_STARTUP_TRIALS - first

    def _view(self, study: optuna.Study) -> optuna.Study:
        return study if self._seen is None else StudyView(study, self._seen)  # type: ignore[return-value]

    def reseed_rng(self) -> None:
        self._base.reseed_rng()

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        pass  # at ask(), before the trial's start is decided: begin() calls the base's

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if self._fixed or self._design:
            return {}  # every parameter goes through sample_independent: fixed or designed there
        return self._base.infer_relative_search_space(self._view(study), trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._base.sample_relative(self._view(study), trial, search_space) if search_space else {}

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        if param_name in self._fixed and contains(param_distribution, self._fixed[param_name]):
            return self._fixed[param_name]
        if self._design is not None:
            return design_value(self.study_seed, param_name, param_distribution, *self._design)
        return self._base.sample_independent(self._view(study), trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._base.after_trial(study, trial, state, values)
