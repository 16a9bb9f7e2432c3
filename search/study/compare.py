"""Whether two studies are the same study: every trial's parameters, state, value, outcome,
reason, curve and place in the schedule, and the confirmation race, as stored, leaving out
what the wall clock measured."""

from __future__ import annotations

from typing import Any

import optuna

from search.confirm.race import confirmation_of
from search.records.keys import POINT_TRAIN_SECONDS, POINT_WALL_SECONDS
from search.records.trial import TrialRecord, placement_of

# Read off the wall clock: they differ between any two runs of the same computation.
MEASURED_POINT_KEYS = {POINT_TRAIN_SECONDS, POINT_WALL_SECONDS}
MEASURED_RUN_FIELDS = {"measured"}


def trial_fields(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    record, placement = TrialRecord.of(trial), placement_of(trial)
    return {
        "number": record.number,
        "params": record.params,
        "state": record.state.name,
        "value": record.value,
        "outcome": record.outcome,
        "reason": record.reason,
        "curve": [{k: v for k, v in p.items() if k not in MEASURED_POINT_KEYS} for p in record.curve],
        # Where it ran in the schedule (a trial judged at the wrong moment can end with the same
        # curve and reason, and only the lane times say so).
        "placement": None if placement is None else (placement.lane, placement.start, placement.end),
    }


def study_fields(study: optuna.Study) -> dict[str, Any]:
    """What two runs of the same study must agree on."""
    trials = [trial_fields(t) for t in study.get_trials(deepcopy=False)]
    race = confirmation_of(study)
    confirmation = None
    if race is not None:
        confirmation = race.to_dict()
        confirmation["runs"] = [
            {k: v for k, v in r.items() if k not in MEASURED_RUN_FIELDS}
            for r in sorted(confirmation["runs"], key=lambda r: (r["trial"], r["seed"]))
        ]
    return {"trials": trials, "confirmation": confirmation}


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where `a` and `b` differ, path by path (empty: they are the same)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d for key in sorted(set(a) | set(b), key=str) for d in differences(a.get(key), b.get(key), f"{where}.{key}")
        ]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items against {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} against {b!r}"]
