"""The samplers a study can use, by name, built here and only here: TPE sees the trials the
saturation pruner stopped as slow after the completed ones, ranked by pace (paced.py). A study samples through
scheduled.py, which builds one of these per slot of its schedule."""

from __future__ import annotations

import warnings

import optuna

from search.sampling.paced import PacedAfterCompleted

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc")
# TPE draws its first trials at random (the baseline and warm start count among them); a
# scheduled study draws those as a first design instead (first_design.py).
TPE_STARTUP_TRIALS = 8


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """Sampler `name` (one of SAMPLERS; the command line's choice checks it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # qmc, cmaes options
        return _base_sampler(name, seed)


def _base_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        # Pruned trials (all that missed the target) still inform TPE, ranked after the
        # completed ones: those the saturation pruner stopped as slow by their pace (paced.py),
        # the others by how far they got. Multivariate TPE models the
        # LR/batch-size interaction the seed journal found.
        return PacedAfterCompleted(
            optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=TPE_STARTUP_TRIALS)
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        # Not consider_pruned_trials: CMA-ES would rank a pruned trial by its last intermediate
        # value, a validation error, among times in seconds.
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    raise ValueError(f"unknown sampler {name!r} (choose from {', '.join(SAMPLERS)})")
