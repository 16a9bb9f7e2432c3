"""Are two studies the same study? Compares every trial's parameters, state, value, outcome,
reason and learning curve, and the confirmation race, leaving out what the wall clock measured.

    python benchmarks/same_study.py sqlite:///a.db:NAME sqlite:///b.db:NAME [--dump DIR]

A study is given as STORAGE:NAME (the name after the last colon). Prints the first
differences and exits 1 if there are any, else prints what was compared and exits 0. `--dump`
writes each study's compared fields as JSON (a.json, b.json) for a diff by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import optuna

from search.confirm.race import confirmation_of
from search.records.keys import POINT_TRAIN_SECONDS
from search.records.trial import TrialRecord
from search.study.storage import opened

# Read off the wall clock: they differ between any two runs of the same computation.
MEASURED_POINT_KEYS = {POINT_TRAIN_SECONDS, "wall_seconds"}
MEASURED_RUN_FIELDS = {"measured"}


def trial_fields(record: TrialRecord) -> dict[str, Any]:
    return {
        "number": record.number,
        "params": record.params,
        "state": record.state.name,
        "value": record.value,
        "outcome": record.outcome,
        "reason": record.reason,
        "curve": [{k: v for k, v in p.items() if k not in MEASURED_POINT_KEYS} for p in record.curve],
    }


def dump(target: str) -> dict[str, Any]:
    storage_url, _, name = target.rpartition(":")
    with opened(storage_url) as storage:
        study = optuna.load_study(study_name=name, storage=storage)
        trials = [trial_fields(TrialRecord.of(t)) for t in study.get_trials(deepcopy=False)]
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
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += differences(a.get(key), b.get(key), f"{where}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items against {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} against {b!r}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="STORAGE:NAME")
    parser.add_argument("b", help="STORAGE:NAME")
    parser.add_argument("--dump", type=Path, default=None, help="folder for a.json and b.json")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    a, b = dump(args.a), dump(args.b)
    if args.dump is not None:
        args.dump.mkdir(parents=True, exist_ok=True)
        for label, d in (("a", a), ("b", b)):
            (args.dump / f"{label}.json").write_text(json.dumps(d, indent=1, sort_keys=True) + "\n")
    found = differences(a, b)
    points = sum(len(t["curve"]) for t in a["trials"])
    runs = len(a["confirmation"]["runs"]) if a["confirmation"] else 0
    if found:
        print(f"{len(found)} differences; the first:", *found[:20], sep="\n  ")
        sys.exit(1)
    print(f"identical: {len(a['trials'])} trials, {points} curve points, {runs} confirmation runs")


if __name__ == "__main__":
    main()
