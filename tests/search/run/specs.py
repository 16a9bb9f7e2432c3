"""Worker specs for tests that drive executors and workers directly, on the tiny data."""

from __future__ import annotations

import optuna

from search.run.spec import OptimizeRequest, Placement, WorkerSpec
from search.space import load_space


def worker_spec(tiny, storage: str, name: str, n_trials: int) -> WorkerSpec:
    """A study made by hand (a target and nothing else) and a worker's spec for it."""
    optuna.create_study(study_name=name, storage=storage).set_user_attr("target", 0.6)
    request = OptimizeRequest(
        n_trials=n_trials,
        study_name=name,
        storage_url=storage,
        sampler="random",
        seed=0,
        data=str(tiny.archive),
        device="cpu",
        val_size=200,
    )
    return WorkerSpec(request, 0.6, load_space(tiny.space), "cpu", (Placement("cpu", None),))
