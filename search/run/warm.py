"""Warm-starting a new study: its first trials train another study's best schedules, priced in the
new study's clock (search/clock/reprice.py), as the baseline gives it a time to beat at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.storages import BaseStorage

from lenet.clock import StepClock
from search.clock.reprice import Trained, read_reprice_document, reprice, trained_of
from search.clock.source import STUDY_PREFIX
from search.errors import RequestError, StudyError
from search.records.files import read_document
from search.records.keys import WARM_PARAMS, WARM_SOURCE
from search.records.study import study_record
from search.space import SearchSpace
from search.study.opening import load_existing

WARM_TOP = 3  # schedules a warm start takes: the repriced best, as many as the confirmation races and one


def warm_schedules(
    source: str,
    storage: BaseStorage,
    clock: StepClock,
    space: SearchSpace,
    target: float,
    baseline: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The best schedules of `source` (study:NAME in this storage, or a `studies reprice --json`
    file) that this study's `space` trains as they are, priced in its `clock` to its `target`,
    as StudyRecord.warm_start stores them; none that repeats another or the `baseline`."""
    trained, name, train_size = _trained(source, storage, clock)
    fitting = [t for t in trained if space.holds(t.config)]
    chosen: list[dict[str, Any]] = []
    seen = [baseline] if baseline is not None else []
    for p in reprice(fitting, clock, train_size, target):
        params = space.baseline_params(p.config)
        if not p.reached or len(chosen) == WARM_TOP or params in seen:
            continue
        seen.append(params)
        chosen.append(
            {WARM_PARAMS: params, WARM_SOURCE: f"trial {p.number} of {name}, {p.seconds:.1f} s in this study's clock"}
        )
    if not chosen:
        raise RequestError(
            f"{source}: none of its trials that this study's space can train reached the target {target:.4f}, "
            "so there is no schedule to start from",
            subject="warm_start",
        )
    return chosen


def _trained(source: str, storage: BaseStorage, clock: StepClock) -> tuple[list[Trained], str, int]:
    """What `source`'s trials trained, its name, and the training size of their steps (a study
    that read the wall clock has no clock to say it: taken to be this study's)."""
    if source.startswith(STUDY_PREFIX):
        name = source[len(STUDY_PREFIX) :]
        try:
            study = load_existing(storage, name)
        except StudyError as exc:  # the study named is the warm start's, not this one's
            raise StudyError(str(exc), subject="warm_start") from None
        record = study_record(study)
        own = record.step_clock() if record is not None else None
        return trained_of(study.get_trials(deepcopy=False)), name, own.train_size if own else clock.train_size
    document = read_document(Path(source))
    try:
        name, train_size, trained = read_reprice_document(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise RequestError(f"{source} is not a `studies reprice --json` file ({exc})", subject="warm_start") from None
    return trained, name, train_size
