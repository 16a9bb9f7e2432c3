"""Optuna's pruners and the project's, by name."""

from __future__ import annotations

import optuna

from search.pruning.saturation import SaturationPruner

PRUNERS = ("saturation", "median", "hyperband", "none")


def make_pruner(name: str, target: float) -> optuna.pruners.BasePruner:
    if name == "saturation":
        return SaturationPruner(target)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r} (choose from {', '.join(PRUNERS)})")
