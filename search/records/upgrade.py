"""Stored data of older versions, read as today's: the one place that knows the old formats.

Studies carry the version of the formats they were created with (`STUDY_SCHEMA`; studies
created before it was stored are version 1). Every change so far added a field, or renamed one,
so each step below fills in what an older writer left out; readers (the records of this
package) upgrade what they read and never see an old shape. Nothing is written back: the
stored data stays as it was, and older versions of lenet-search can still read it.

History (commit: change):
- eadf030: curve points and trial results gained `clock_seconds`; older studies read the wall
  clock, so their clock seconds are their measured ones.
- e87432a: the space gained `evals_per_epoch` (older studies evaluated once per epoch).
- before e87432a: curve points had no `epoch` (one evaluation per epoch, counted from 1).
- 8c67997: an exported confirmation gained `median_exact` (before, `exact` said both).
- 07092ec: a confirmation run's `rerun` became `bounded`.
- this version (2): studies store `schema`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from search.records.keys import (
    CLOCK_SECONDS,
    CONFIRMED_EXACT,
    CONFIRMED_MEDIAN_EXACT,
    CURVE,
    EXPORT_CONFIRMATION,
    OUTCOME,
    POINT_CLOCK_SECONDS,
    POINT_EPOCH,
    POINT_TRAIN_SECONDS,
    SPACE_EVALS_PER_EPOCH,
    STUDY_CONFIRMATION,
    STUDY_SCHEMA,
    STUDY_SPACE,
    TRAIN_SECONDS,
)

SCHEMA_VERSION = 2
_OLD_BOUNDED, _BOUNDED, _RUNS = "rerun", "bounded", "runs"  # a confirmation run's field, before 07092ec and since


def schema_of(study_attrs: Mapping[str, Any]) -> int:
    return int(study_attrs.get(STUDY_SCHEMA, 1))


def _is_current(curve: Sequence[Mapping[str, Any]]) -> bool:
    """Written by this version: its points have every key (checking the first is enough)."""
    return not curve or (POINT_CLOCK_SECONDS in curve[0] and POINT_EPOCH in curve[0])


def upgrade_curve(curve: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A stored learning curve with every point in today's form."""
    if _is_current(curve):
        return list(curve)
    upgraded = []
    for i, point in enumerate(curve, start=1):
        p = dict(point)
        p.setdefault(POINT_CLOCK_SECONDS, p[POINT_TRAIN_SECONDS])
        p.setdefault(POINT_EPOCH, float(i))
        upgraded.append(p)
    return upgraded


def upgrade_trial(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """A trial's stored attributes in today's form."""
    curve = attrs.get(CURVE) or []
    needs_clock = OUTCOME in attrs and TRAIN_SECONDS in attrs and CLOCK_SECONDS not in attrs
    if not needs_clock and _is_current(curve):
        return attrs
    a = dict(attrs)
    a[CURVE] = upgrade_curve(curve)
    if needs_clock:
        a[CLOCK_SECONDS] = a[TRAIN_SECONDS]
    return a


def upgrade_study(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """A study's stored attributes in today's form (each step fills in only what is missing)."""
    space, race = attrs.get(STUDY_SPACE), attrs.get(STUDY_CONFIRMATION)
    space_old = isinstance(space, Mapping) and SPACE_EVALS_PER_EPOCH not in space
    race_old = isinstance(race, Mapping) and any(_OLD_BOUNDED in r for r in race.get(_RUNS, []))
    if not (space_old or race_old):
        return attrs
    a = dict(attrs)
    if space_old:
        a[STUDY_SPACE] = {SPACE_EVALS_PER_EPOCH: 1, **space}
    if race_old:
        runs = [{(_BOUNDED if k == _OLD_BOUNDED else k): v for k, v in r.items()} for r in race[_RUNS]]
        a[STUDY_CONFIRMATION] = {**race, _RUNS: runs}
    return a


def upgrade_export(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """An export document in today's form."""
    confirmed = document.get(EXPORT_CONFIRMATION)
    if not isinstance(confirmed, Mapping) or CONFIRMED_MEDIAN_EXACT in confirmed:
        return document
    return {**document, EXPORT_CONFIRMATION: {**confirmed, CONFIRMED_MEDIAN_EXACT: confirmed.get(CONFIRMED_EXACT)}}
