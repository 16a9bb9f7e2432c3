"""Optuna's pruners and the project's, by name."""

from __future__ import annotations

import optuna

from search.pruning.saturation import SaturationPruner

PRUNERS = ("saturation", "median", "hyperband", "none")


def make_pruner(name: str, target: float, max_epochs: int) -> optuna.pruners.BasePruner:
    """Pruner `name` for a study of `target` whose trials train at most `max_epochs` epochs."""
    if name == "saturation":
        return SaturationPruner(target)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        # The budget given, not "auto": every executor then makes the same brackets (auto reads
        # the completed trials of the moment it is first asked).
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r} (choose from {', '.join(PRUNERS)})")
