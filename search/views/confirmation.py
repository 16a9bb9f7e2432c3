"""The confirmation race as text: each run as it finishes, and the ranking with medians and ranges."""

from __future__ import annotations

import math

from search.confirm.race import CandidateSummary, Confirmation, SeedRun


def median_text(median: float | None, exact: bool) -> str:
    """A confirmed median; a lower bound where runs stopped at a cap, None or infinity where most
    seeds never reached the target."""
    if median is None or math.isinf(median):
        return "median not reached"
    return f"median {median:.1f} s" if exact else f"median at least {median:.1f} s"


def range_text(low: float | None, high: float | None, exact: bool) -> str:
    """A confirmed range; its top is only a lower bound when the slowest seed stopped at a cap.
    None or infinity: a seed that never reached the target within the epoch budget."""

    def seconds(x: float | None) -> str:
        return "not reached" if x is None or math.isinf(x) else f"{x:.1f} s"

    if high is None or math.isinf(high):
        return f"range {seconds(low)} to not reached"
    return f"range {low:.1f}-{high:.1f} s" if exact else f"range {seconds(low)} to more than {high:.1f} s"


def times_text(candidate: CandidateSummary) -> str:
    """Its time on each seed: exact, at least a cap, or not reached."""

    def one(r: SeedRun) -> str:
        if r.seconds is not None:
            return f"{r.seconds:.1f}"
        return f">{r.cap:.1f}" if r.stopped_at_cap and r.cap is not None else "not reached"

    return ", ".join(one(r) for r in candidate.runs)


def confirm_run_line(run: SeedRun) -> str:
    if run.seconds is not None:
        what = f"{run.seconds:.1f} s to target (measured {run.measured:.1f} s)"
    elif run.stopped_at_cap and run.bounded:
        what = f"stopped at {run.cap:.1f} s: a longer time would change neither ranking nor median"
    elif run.stopped_at_cap:
        # The incumbent's time on this seed, or where its own run stopped above its median.
        what = f"stopped at {run.cap:.1f} s, where the incumbent stopped on this seed"
    else:
        what = f"did not reach the target in {run.epochs:.4g} epochs"
    return f"confirm trial {run.trial:>3} seed {run.seed}: {what}"


def confirmation_lines(race: Confirmation | None) -> list[str]:
    """The race's ranking: per-seed times, median and range, and why others dropped."""
    if race is None or not race.runs:
        return []
    seeds = f"{race.seeds[0]}-{race.seeds[-1]}" if len(race.seeds) > 1 else str(race.seeds[0])
    state = "" if race.done else " (unfinished: rerun the same command to complete it)"
    n = len(race.candidates)
    lines = [f"confirmed on fresh seeds {seeds}, {n} candidate{'' if n == 1 else 's'} raced{state}:"]
    if race.joined and race.claim_lost:
        lines.append(
            f"  raced here until another host ({race.joined}) took it over (this one seemed dead); it finished it"
        )
    elif race.joined:
        lines.append(f"  raced by another host ({race.joined}); this one waited for it and trained none of it")
    for c in race.ranking():
        head = "winner" if c.trial == race.incumbent else "      "
        median = median_text(c.median, c.median_exact)
        spread = f", {range_text(c.low, c.high, c.exact)}" if c.median_exact else ""
        dropped = f"; dropped: {c.dropped}" if c.dropped and c.trial != race.incumbent else ""
        lines.append(f"  {head} trial {c.trial:>3}: {median}{spread} ({times_text(c)}){dropped}")
    return lines
