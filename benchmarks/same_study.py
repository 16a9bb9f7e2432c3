"""Are two studies the same study? Compares every trial's parameters, state, value, outcome,
reason and learning curve, and the confirmation race, leaving out what the wall clock measured
(search/study/compare.py).

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

from search.study.compare import differences, study_fields
from search.study.storage import opened


def dump(target: str) -> dict[str, Any]:
    storage_url, _, name = target.rpartition(":")
    with opened(storage_url) as storage:
        return study_fields(optuna.load_study(study_name=name, storage=storage))


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
