"""Warm-starting a new study: its first trials train another study's best schedules, priced in the
new study's clock (search/clock/reprice.py), as the baseline gives it a time to beat at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.storages import BaseStorage

from lenet.clock import StepClock
from search.clock.reprice import Trained, reprice
from search.clock.source import STUDY_PREFIX
from search.errors import RequestError
from search.records.files import read_document
from search.records.keys import WARM_PARAMS, WARM_SOURCE
from search.records.trial import TrialRecord
from search.space import SearchSpace
from search.study.opening import load_existing

WARM_TOP = 3  # schedules a warm start takes: the repriced best, as many as the confirmation races and one


def warm_schedules(source: str, storage: BaseStorage, clock: StepClock, space: SearchSpace) -> list[dict[str, Any]]:
    """The best schedules of `source` (study:NAME in this storage, or a `studies reprice --json`
    file) in the new study's `clock`, as StudyRecord.warm_start stores them."""
    trained, name = _trained(source, storage)
    priced = [p for p in reprice(trained, clock, clock.train_size) if p.reached][:WARM_TOP]
    if not priced:
        raise RequestError(
            f"{source}: no trial reached its target, so there is no schedule to start from", subject="warm_start"
        )
    return [
        {
            WARM_PARAMS: space.baseline_params(p.config),
            WARM_SOURCE: f"trial {p.number} of {name}, {p.seconds:.1f} s in this study's clock",
        }
        for p in priced
    ]


def _trained(source: str, storage: BaseStorage) -> tuple[list[Trained], str]:
    if source.startswith(STUDY_PREFIX):
        name = source[len(STUDY_PREFIX) :]
        study = load_existing(storage, name)
        records = (Trained.of(TrialRecord.of(t)) for t in study.get_trials(deepcopy=False))
        return [t for t in records if t is not None], name
    document = read_document(Path(source))
    try:
        return [Trained.from_dict(s["trained"]) for s in document["schedules"]], str(document["study"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RequestError(f"{source} is not a `studies reprice --json` file ({exc})", subject="warm_start") from None
