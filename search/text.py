"""What the commands print, as lines of text: tables and summaries built from the library's
results (the command line only prints them)."""

from __future__ import annotations

import math
import signal
from typing import Any

from search.catalog import StudyRow, StudyView
from search.optimize import StudyOutcome
from search.prepare import Prepared
from search.progress import format_params
from search.clock_check import agreement_lines
from search.confirm import Confirmation, ConfirmRun
from search.record import StudyRecord, TrialRecord, step_clock


def export_summary(trial: TrialRecord, confirmed: dict[str, Any] | None) -> str:
    """What an exported trial amounts to: its confirmation, and what the search measured."""
    if trial.seconds_to_target is not None:
        search = f"in the search {trial.seconds_to_target:.1f} s to target"
    else:
        search = f"in the search stopped at {trial.clock_seconds or trial.train_seconds:.1f} s ({trial.outcome}), best val {trial.best_val_accuracy or 0:.4f}"
    if not confirmed:
        return search
    head = "confirmed winner" if confirmed["winner"] else "confirmation"
    median_exact = confirmed.get("median_exact", confirmed["exact"])  # exports before it had only "exact"
    median = median_text(confirmed["median"], median_exact)
    return (f"{head}, {median} ({range_text(confirmed['low'], confirmed['high'], confirmed['exact'])}) on seeds "
            f"{', '.join(map(str, confirmed['seeds']))}; {search}")  # fmt: skip


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


def confirm_run_line(run: ConfirmRun) -> str:
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
    for c in race.ranking():
        head = "winner" if c.trial == race.incumbent else "      "
        median = median_text(c.median, c.median_exact)
        spread = f", {range_text(c.low, c.high, c.exact)}" if c.median_exact else ""
        lines.append(f"  {head} trial {c.trial:>3}: {median}{spread} ({c.times_text()})"
                     + (f"; dropped: {c.dropped}" if c.dropped and c.trial != race.incumbent else ""))  # fmt: skip
    return lines


def clock_lines(record: StudyRecord | None) -> list[str]:
    """The study's clock, and its step costs when it is calibrated."""
    if record is None:
        return []
    clock = step_clock(record)
    if clock is None:
        return [f"clock: {record.clock} (seconds read off the wall clock)"]
    costs = ", ".join(f"{k}: {c.full * 1000:.2f}" + (f"/{c.partial * 1000:.2f}" if c.partial else "")
                      for k, c in clock.costs.items())  # fmt: skip
    return [f"clock: calibrated on {clock.device} with {clock.threads} threads, {clock.rounds} rounds; "
            f"ms per step (full/partial batch) by batch size: {costs}"]  # fmt: skip


def study_header(prepared: Prepared) -> str:
    spec, r = prepared.spec, prepared.request
    workers = f"{r.jobs} worker(s) x {spec.threads} threads" if spec.threads else f"{r.jobs} worker(s)"
    return (f"study {r.study_name!r} in {r.storage_url}: target {spec.target:.4f} ({prepared.record.target_source}), "
            f"{r.n_trials} trials, {workers} on {spec.device}, {prepared.record.clock} clock")  # fmt: skip


def optimize_summary(outcome: StudyOutcome) -> list[str]:
    """The closing summary of a finished `optimize` run."""
    r, c = outcome.request, outcome.counts
    lines = [f"finished: {c['complete']} reached the target, {c['pruned']} pruned, {c['fail']} failed; "
             f"{outcome.wall_seconds:.0f} s wall"]  # fmt: skip
    best = outcome.best
    if best is None or best.config is None:
        lines.append(f"no trial reached the target {outcome.target:.4f} yet; try more trials, more --max-epochs, "
                     "or a lower --target")  # fmt: skip
    else:
        cfg = best.config
        lines.append(f"best of the search: trial {best.number} reached {outcome.target:.4f} in {best.value:.1f} s of "
                     f"training (epoch {best.epochs_to_target:.4g}, best val {best.best_val_accuracy:.4f})")  # fmt: skip
        lines.append(f"  schedule: lr {cfg.lr:.4g}, batch {cfg.batch_size}, StepLR every {cfg.step_size} epochs "
                     f"x {cfg.gamma:.3g}, momentum {cfg.momentum:.3g}")  # fmt: skip
    lines += confirmation_lines(outcome.confirmation)
    if outcome.confirmation is not None:
        search = outcome.wall_seconds - outcome.confirm_seconds
        if search >= 1.0:
            share = f"{100 * outcome.confirm_seconds / search:.0f} % of the search's"
        else:  # a finished study reopened: this run trained no search trial to compare with
            share = "the search's trials had all finished before this run"
        lines.append(f"  confirmation: {outcome.confirm_seconds:.0f} s wall, {share}")
    lines += [
        f"stored in {r.storage_url} as study {r.study_name!r}",
        "next:",
        f"  lenet-search dashboard --storage {r.storage_url}",
        f"  lenet-search export --study {r.study_name} --storage {r.storage_url} -o studies/best.json",
    ]
    return lines


def interrupted_message(outcome: StudyOutcome) -> str:
    r = outcome.request
    what = signal.Signals(outcome.interrupted - 128).name if outcome.interrupted else "SIGINT"
    return (f"Interrupted ({what}): the running trial ended as FAIL with its reason and does not count. Resume with the "
            f"same command: lenet-search optimize --trials {r.n_trials} --study {r.study_name} "
            f"--storage {r.storage_url}")  # fmt: skip


def studies_table(rows: list[StudyRow]) -> list[str]:
    lines = [f"{'study':<24}{'trials':>7}{'done':>6}{'pruned':>8}{'failed':>8}{'best s':>9}{'target':>8}  "
             "created / prune reasons"]  # fmt: skip
    for r in rows:
        best, target = _number(r.best_value, ".1f"), _number(r.target, ".4f")
        lines.append(f"{r.name:<24}{sum(r.states.values()):>7}{r.states.get('complete', 0):>6}"
                     f"{r.states.get('pruned', 0):>8}{r.states.get('fail', 0):>8}{best:>9}{target:>8}  "
                     f"{r.created or '-'}")  # fmt: skip
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items(), key=lambda kv: -kv[1]))
        if reasons:
            lines.append(f"{'':<24}{'':>46}  {reasons}")
    return lines


def study_table(view: StudyView) -> list[str]:
    target = view.record.target if view.record else None
    return [
        f"study {view.name!r}: target {target}, {view.n_trials} trials",
        *clock_lines(view.record),
        *agreement_lines(view.clock),
        *confirmation_lines(view.confirmation),
        f"{'trial':>5} {'state':<8}{'s to target':>12}{'epochs':>7}{'best val':>9}  parameters | outcome",
        *(_trial_row(t) for t in view.top),
    ]


def _trial_row(t: TrialRecord) -> str:
    return (f"{t.number:>5} {t.state.name.lower():<8}{_number(t.value, '.1f'):>12}{t.epochs:>7.4g}"
            f"{t.best_val_accuracy or 0:>9.4f}  {format_params(t.params)} | {t.reason}")  # fmt: skip


def _number(value: float | None, spec: str, unit: str = "") -> str:
    """`value` formatted, or '-' where there is none."""
    return "-" if value is None else f"{value:{spec}}{unit}"
