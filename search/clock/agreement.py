"""Measured against calibrated seconds, per batch size: does the study's step clock still
describe what the trials took?

Every trial records both its measured training seconds and the same training in the study's
clock. Their ratio per batch size, over the trials of a study, says how far the machine's
speed during the study strayed from the calibration: a median within `AGREEMENT` of 1 is the
noise of a shared machine (the same computation's seconds moved by up to 30 % between runs
on the development machine); further out, the clock no longer describes this machine
(another load, another host, throttling), and `studies show` and the report warn.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from search.records.trial import TrialRecord

AGREEMENT = (0.8, 1.25)


@dataclass(frozen=True)
class ClockAgreement:
    batch_size: int
    trials: int
    median: float  # measured / calibrated seconds
    low: float
    high: float

    @property
    def agrees(self) -> bool:
        return AGREEMENT[0] <= self.median <= AGREEMENT[1]


def clock_agreement(records: Iterable[TrialRecord]) -> list[ClockAgreement]:
    """Per batch size, over the finished trials that trained."""
    ratios: dict[int, list[float]] = defaultdict(list)
    for r in records:
        if r.config is not None and r.clock_seconds and r.measured_seconds > 0 and r.state.is_finished():
            ratios[r.config.batch_size].append(r.measured_seconds / r.clock_seconds)
    return [ClockAgreement(bs, len(v), statistics.median(v), min(v), max(v)) for bs, v in sorted(ratios.items())]


def agreement_lines(rows: list[ClockAgreement]) -> list[str]:
    """The table, and a warning line for each batch size where the clocks part."""
    if not rows:
        return []
    lines = [
        "measured / calibrated seconds per batch size: "
        + ", ".join(f"{r.batch_size}: {r.median:.2f} ({r.low:.2f}-{r.high:.2f}, {r.trials} trials)" for r in rows)
    ]
    for r in rows:
        if not r.agrees:
            lines.append(
                f"warning: at batch size {r.batch_size} trials took {r.median:.2f}x the calibrated time: "
                "the machine was not the one the clock measured (load, another host, throttling)"
            )
    return lines
