"""Opening studies: storage URLs, samplers, pruners, and the attributes a study keeps so
that its trials stay comparable (target, search space, hardware)."""

from __future__ import annotations

import os
import sqlite3
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from search.baseline import BASELINE_ATTR
from search.capped import CappedAsCompleted
from search.pruner import SaturationPruner
from search.provenance import now_text
from search.space import BUDGET, SearchSpace

DEFAULT_STUDY = "lenet5-cifar10"
DEFAULT_STORAGE = "sqlite:///studies/lenet.db"
OBJECTIVE_NAME = "train seconds to target"
SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc")
PRUNERS = ("saturation", "median", "hyperband", "none")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Workers beat every HEARTBEAT s; a trial silent for GRACE s is marked FAIL and retried.
# The environment may shorten both (tests that kill workers), never below Optuna's 1 s.
HEARTBEAT_SECONDS = max(1, int(os.environ.get("LENET_HEARTBEAT_SECONDS", "10")))
GRACE_SECONDS = max(2 * HEARTBEAT_SECONDS, int(os.environ.get("LENET_GRACE_SECONDS", "30")))


class StudyError(ValueError):
    """A study that cannot be opened as asked (bad URL, mismatched target or space...)."""


def make_storage(url: str) -> RDBStorage:
    """An RDB storage with heartbeats and retry of dead workers' trials.

    SQLite waits up to 60 s for a lock instead of failing with "database is locked" when
    several local workers write at once.
    """
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
            _use_wal(path)
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif "://" not in url:
        raise StudyError(f"storage {url!r} is not a database URL (e.g. sqlite:///studies/lenet.db, postgresql://host/db)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in use
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
            )
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError) as exc:
        raise StudyError(f"storage URL {url!r} cannot be parsed: {str(exc).splitlines()[0]}") from exc
    except sqlalchemy.exc.OperationalError as exc:
        raise StudyError(f"storage {url!r} cannot be reached: {str(exc.orig).strip().splitlines()[0]}") from exc
    except ImportError as exc:
        raise StudyError(f"storage {url!r} needs a database driver that is not installed: {exc.name}") from exc


def close_storage(storage: RDBStorage) -> None:
    """Close the storage's pooled database connections now, not whenever it is collected."""
    storage.engine.dispose()


def _use_wal(path: Path) -> None:
    """Write-ahead logging: readers (the progress display, other workers' pruners) no longer
    block the writer. It is a property of the file, so setting it once is enough."""
    try:
        with sqlite3.connect(path, timeout=60) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise StudyError(f"SQLite storage {path} cannot be opened: {exc}") from exc


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # qmc, cmaes options
        return _make_sampler(name, seed)


def _make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        # Pruned trials (all that missed the target) still inform TPE: it ranks them after
        # the completed ones by how far they got, except near misses the cannot-win rule
        # capped, which it sees as completed at their cap (search/capped.py). Multivariate
        # TPE models the LR/batch-size interaction the seed journal found.
        return CappedAsCompleted(optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, consider_pruned_trials=True, warn_independent_sampling=False)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    raise StudyError(f"unknown sampler {name!r} (choose from {', '.join(SAMPLERS)})")


def make_pruner(name: str, target: float) -> optuna.pruners.BasePruner:
    if name == "saturation":
        return SaturationPruner(target)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise StudyError(f"unknown pruner {name!r} (choose from {', '.join(PRUNERS)})")


@dataclass(frozen=True)
class StudySettings:
    """What a study is created with and must be reopened with."""

    target: float
    target_source: str
    space: SearchSpace
    device: str
    threads: int
    data_checksum: str
    seed: int
    # Parameters of trial 0 (search.baseline), stored when the study is created (None: no
    # baseline). Reopening a study never changes them.
    baseline: dict[str, Any] | None = None


def study_exists(storage: RDBStorage, name: str) -> bool:
    return any(s.study_name == name for s in storage.get_all_studies())


def stored_target(storage: RDBStorage, name: str) -> float | None:
    if not study_exists(storage, name):
        return None
    return optuna.load_study(study_name=name, storage=storage).user_attrs.get("target")


def open_study(
    name: str,
    storage: RDBStorage,
    settings: StudySettings,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    *,
    explicit_target: bool,
) -> tuple[optuna.Study, list[str]]:
    """Create the study, or reopen it after checking that it is the same search.

    Returns the study and warnings for the user. Refuses (StudyError) another target or
    space, or another device type; warns about another thread count or data set.
    """
    if not study_exists(storage, name):
        study = optuna.create_study(
            study_name=name, storage=storage, sampler=sampler, pruner=pruner, direction="minimize"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([OBJECTIVE_NAME])
        attrs = {
            "target": settings.target,
            "target_source": settings.target_source,
            "objective": "training seconds (evaluation excluded) until validation accuracy first reaches the target",
            "intermediate_values": "validation error (1 - accuracy) at the end of each epoch (step = epoch)",
            "space": settings.space.to_dict(),
            "device": settings.device,
            "threads": settings.threads,
            "data_checksum": settings.data_checksum,
            "seed": settings.seed,
            "created": now_text(),
        }
        if settings.baseline:
            attrs[BASELINE_ATTR] = settings.baseline
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        return study, []

    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    attrs = study.user_attrs
    if "target" not in attrs:
        raise StudyError(f"study {name!r} was not created by lenet-search (it has no target)")
    if explicit_target and abs(attrs["target"] - settings.target) > 1e-12:
        raise StudyError(
            f"study {name!r} has target {attrs['target']}, not {settings.target}; "
            "use another --study name for another target"
        )
    stored_space = dict(attrs.get("space") or {})
    stored_space.setdefault("evals_per_epoch", 1)  # studies from before it was stored evaluated once an epoch
    if stored_space != settings.space.to_dict():
        differs = [k for k in BUDGET if stored_space.get(k) != getattr(settings.space, k)]
        what = ", ".join(f"{k} {stored_space.get(k)} (this run: {getattr(settings.space, k)})" for k in differs)
        raise StudyError(
            f"study {name!r} was created with another search space ({what or 'parameters differ'}); "
            "reopen it with the same --space file, --max-epochs and --evals-per-epoch, or use another --study name"
        )
    if attrs.get("device", "").split(":")[0] != settings.device.split(":")[0]:
        raise StudyError(
            f"study {name!r} measured seconds on {attrs.get('device')}, this run would use {settings.device}: "
            "its times would not be comparable; use another --study name"
        )
    notes = []
    if attrs.get("threads") != settings.threads:
        notes.append(
            f"study {name!r} was timed with {attrs.get('threads')} threads per worker, this run uses "
            f"{settings.threads}: new trials' seconds are not directly comparable with earlier ones"
        )
    if attrs.get("data_checksum") != settings.data_checksum:
        notes.append(f"study {name!r} was created on another data source (checksum differs)")
    return study, notes


def count_states(study: optuna.Study) -> dict[str, int]:
    counts = {s.name.lower(): 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] += 1
    return counts


def load_existing(storage: RDBStorage, name: str) -> optuna.Study:
    """An existing study, or a StudyError that lists the ones there are."""
    names = [s.study_name for s in storage.get_all_studies()]
    if name not in names:
        there = f"studies there: {', '.join(names)}" if names else "the storage holds no studies"
        raise StudyError(f"no study named {name!r} ({there})")
    return optuna.load_study(study_name=name, storage=storage)
