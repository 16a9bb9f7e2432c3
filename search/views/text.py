"""What the commands print, as lines of text: tables and summaries built from the library's
results (the command line only prints them)."""

from __future__ import annotations

import math
import signal

from lenet.clock import StepClock
from search.clock.agreement import agreement_lines
from search.clock.reprice import Priced
from search.records.export import ExportDocument
from search.records.study import StudyRecord
from search.records.trial import TrialRecord
from search.retrain.training import TrainingReport
from search.run.optimize import OptimizeResult
from search.run.prepare import Prepared
from search.study.catalog import RepriceView, StudyRow, StudyView
from search.study.machines import Comparison
from search.study.storage import shown_url
from search.views.confirmation import confirmation_lines, median_text, range_text
from search.views.names import clock_name
from search.views.progress import format_params


def export_summary(document: ExportDocument) -> str:
    """What an exported trial amounts to: its confirmation, and what the search measured."""
    m = document.metrics
    if m.clock_seconds_to_target is not None:
        search = f"in the search {m.clock_seconds_to_target:.1f} s to target"
    else:
        search = (
            f"in the search stopped at {m.clock_seconds:.1f} s ({m.outcome}), best val {m.best_val_accuracy or 0:.4f}"
        )
    c = document.confirmation
    if c is None:
        return search
    head = "confirmed winner" if c.winner else "confirmation"
    median = median_text(c.median, bool(c.median_exact))
    seeds = ", ".join(map(str, c.seeds or []))
    return f"{head}, {median} ({range_text(c.low, c.high, bool(c.exact))}) on seeds {seeds}; {search}"


def clock_lines(record: StudyRecord | None) -> list[str]:
    """The study's clock, and its step costs when it is calibrated."""
    if record is None:
        return []
    clock = record.step_clock()
    if clock is None:
        return [f"clock: {record.clock} (seconds read off the wall clock)"]
    return clock_lines_of(clock)


def clock_lines_of(clock: StepClock) -> list[str]:
    """A step clock's costs."""
    costs = ", ".join(
        f"{k}: {c.full * 1000:.2f}" + (f"/{c.partial * 1000:.2f}" if c.partial else "") for k, c in clock.costs.items()
    )
    side = f" x {clock.processes} processes side by side" if clock.processes > 1 else ""
    evaluation = f"; an evaluation {clock.evaluation * 1000:.0f} ms" if clock.evaluation else ""
    return [
        f"clock: calibrated on {clock.device} with {clock.threads} threads{side}, {clock.rounds} rounds; "
        f"ms per step (full/partial batch) by batch size: {costs}{evaluation}"
    ]


def study_header(prepared: Prepared) -> str:
    spec, r, layout = prepared.spec, prepared.request, prepared.layout
    threads = f" x {layout.threads} thread(s)" if layout.threads else ""
    members = f", populations of {layout.population}" if layout.population > 1 else ""
    lanes = f"{layout.lanes} lane(s) in {spec.jobs} process(es){threads}{members}"
    chosen = f"\n  {layout.choice}" if layout.choice else ""
    return (
        f"study {r.study_name!r} in {shown_url(r.storage_url)}: "
        f"target {spec.target:.4f} ({prepared.record.target_source}), "
        f"{r.n_trials} trials, {lanes} on {spec.device}, {prepared.record.clock} clock{chosen}"
    )


def optimize_summary(result: OptimizeResult) -> list[str]:
    """The closing summary of a finished `optimize` run."""
    r, c = result.request, result.counts
    lines = [
        f"finished: {c['complete']} reached the target, {c['pruned']} pruned, {c['fail']} failed; "
        f"{result.wall_seconds:.0f} s wall"
    ]
    if result.stopped is not None:
        lines.append(f"search {result.stopped}")
    best = result.best
    if best is None or best.config is None:
        lines.append(
            f"no trial reached the target {result.target:.4f} yet; try more trials, more --max-epochs, "
            "or a lower --target"
        )
    else:
        cfg = best.config
        lines.append(
            f"best of the search: trial {best.number} reached {result.target:.4f} in {best.value:.1f} s of "
            f"training (epoch {best.epochs_to_target:.4g}, best val {best.best_val_accuracy:.4f})"
        )
        lines.append(
            f"  schedule: lr {cfg.lr:.4g}, batch {cfg.batch_size}, StepLR every {cfg.step_size} epochs "
            f"x {cfg.gamma:.3g}, momentum {cfg.momentum:.3g}"
        )
    if result.waited_seconds > 0:
        busy = result.wall_seconds - result.confirm_seconds
        share = 100 * result.waited_seconds / max(busy * result.jobs, 1e-9)
        lines.append(
            f"  the workers waited {result.waited_seconds:.0f} s for other lanes ({share:.1f} % of their time)"
        )
    lines += confirmation_lines(result.confirmation)
    if result.confirmation is not None:
        search = result.wall_seconds - result.confirm_seconds
        if search >= 1.0:
            share = f"{100 * result.confirm_seconds / search:.0f} % of the search's"
        else:  # a finished study reopened: this run trained no search trial to compare with
            share = "the search's trials had all finished before this run"
        lines.append(f"  confirmation: {result.confirm_seconds:.0f} s wall, {share}")
    lines += [
        f"stored in {shown_url(r.storage_url)} as study {r.study_name!r}",
        "next:",
        f"  lenet-search dashboard --storage {shown_url(r.storage_url)}",
        f"  lenet-search export --study {r.study_name} --storage {shown_url(r.storage_url)} -o studies/best.json",
    ]
    return lines


def interrupted_message(result: OptimizeResult) -> str:
    r = result.request
    what = signal.Signals(result.interrupted - 128).name if result.interrupted else "SIGINT"
    return (
        f"Interrupted ({what}): the running trials stopped where they were; they are trained again from their start "
        f"when the study resumes. Resume with the same command: lenet-search optimize --trials {r.n_trials} "
        f"--study {r.study_name} "
        f"--storage {shown_url(r.storage_url)}"
    )


def studies_table(rows: list[StudyRow]) -> list[str]:
    lines = [
        f"{'study':<24}{'trials':>7}{'done':>6}{'pruned':>8}{'failed':>8}{'best s':>9}{'target':>8}  "
        "created / prune reasons"
    ]
    for r in rows:
        best, target = _number(r.best_value, ".1f"), _number(r.target, ".4f")
        lines.append(
            f"{r.name:<24}{sum(r.states.values()):>7}{r.states.get('complete', 0):>6}"
            f"{r.states.get('pruned', 0):>8}{r.states.get('fail', 0):>8}{best:>9}{target:>8}  "
            f"{r.created or '-'}"
        )
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
    return (
        f"{t.number:>5} {t.state.name.lower():<8}{_number(t.value, '.1f'):>12}{t.epochs:>7.4g}"
        f"{t.best_val_accuracy or 0:>9.4f}  {format_params(t.params)} | {t.reason}"
    )


def _number(value: float | None, spec: str) -> str:
    """`value` formatted, or '-' where there is none."""
    return "-" if value is None else f"{value:{spec}}"


# -- train ------------------------------------------------------------------------------------


def train_summary(report: TrainingReport) -> list[str]:
    """What `train` prints after the run."""
    m = report.metrics
    lines = [
        f"started {m.started}, finished {m.finished} on {m.device}" + (f" ({m.threads} threads)" if m.threads else ""),
        f"outcome: {m.status} ({m.reason})",
        f"epochs: {m.epochs:.4g}, training time: {m.measured_seconds:.1f} s "
        f"(wall {m.wall_seconds:.1f} s with evaluation)",
        f"validation accuracy: best {m.best_val_accuracy:.4f}, final {m.final_val_accuracy:.4f}",
    ]
    if m.target is not None:
        if m.measured_seconds_to_target is None:
            lines.append(f"target {m.target:.4f}: not reached")
        else:
            lines.append(
                f"target {m.target:.4f}: reached after {m.measured_seconds_to_target:.1f} s of training "
                f"(epoch {m.epochs_to_target:.4g})"
            )
            lines += _comparison(report)
    lines.append(f"test accuracy: {m.test_accuracy:.4f} (loss {m.test_loss:.4f})")
    lines += [f"{kind}: {path}" for kind, path in (report.paths or {}).items()]
    return lines


def _comparison(report: TrainingReport) -> list[str]:
    """How the retrain compares with the exported trial: in its study's clock when the export
    carries one (the same steps cost the same there), else in measured seconds."""
    export, m = report.export, report.metrics
    if export is None:
        return []
    reported = export.metrics
    clock_s = m.clock_seconds_to_target
    if clock_s is not None:
        lines = [f"  in the study's clock: {clock_s:.1f} s"]
        if reported.clock_seconds_to_target:
            change = 100 * (clock_s / reported.clock_seconds_to_target - 1)
            lines[0] += f"; the exported trial reported {reported.clock_seconds_to_target:.1f} s ({change:+.0f} % here)"
        c = export.confirmation
        if c is not None and c.median is not None and c.median_exact:
            # The range's top is open when its slowest seed stopped at a cap or never reached the
            # target (null): nothing is above it then.
            closed = bool(c.exact) and c.high is not None
            where = "below" if clock_s < c.low else "above" if closed and clock_s > c.high else "within"
            lines.append(
                f"  confirmed on seeds {', '.join(map(str, c.seeds or []))}: median {c.median:.1f} s, "
                f"{range_text(c.low, c.high, bool(c.exact))}; this retrain is {where} that range "
                f"({100 * (clock_s / c.median - 1):+.0f} % against the median)"
            )
        return lines
    measured = reported.measured_seconds_to_target or (
        reported.clock_seconds_to_target if report.export_clock is None else None
    )
    if measured and m.measured_seconds_to_target is not None:
        change = 100 * (m.measured_seconds_to_target / measured - 1)
        return [f"  the exported trial reported {measured:.1f} s ({change:+.0f} % here)"]
    return []


# -- clocks and repricing -----------------------------------------------------------------------


def seconds_text(priced: Priced) -> str:
    if math.isinf(priced.seconds):
        return "never"
    return f"{priced.seconds:.1f}" if priced.exact else f">{priced.seconds:.1f}"


def reprice_table(view: RepriceView, top: int) -> list[str]:
    """`studies reprice`: the study's schedules by what they cost in the other clock."""
    lines = [
        f"study {view.name!r} (its clock: {clock_name(view.own)}) priced in the clock of {view.source} "
        f"({clock_name(view.other)}): seconds to target, exact, or '>' a lower bound (stopped by its own "
        "study's pruner), or never (out of budget)",
        f"{'rank':>4} {'trial':>5}{'here':>9}{'there':>9}  parameters | its outcome",
    ]
    for rank, p in enumerate(view.priced[:top], start=1):
        own = "-" if p.own_seconds is None else f"{p.own_seconds:.1f}"
        lines.append(f"{rank:>4} {p.number:>5}{own:>9}{seconds_text(p):>9}  {format_params(p.params)} | {p.outcome}")
    best = [p.number for p in view.priced if p.reached][:3]
    if best:
        lines.append(f"to try there first: trial{'s' if len(best) > 1 else ''} {', '.join(map(str, best))}")
    return lines


def compare_table(comparison: Comparison) -> list[str]:
    """`lenet-search compare`: each machine's winner, and each winner priced in every clock."""
    ms = comparison.machines
    lines = [f"machine {i + 1}: {m.label}, clock {clock_name(m.clock)}" for i, m in enumerate(ms)]
    head = "".join(f"{'on ' + str(j + 1):>10}" for j in range(len(ms)))
    lines.append(f"{'winner of':<12}{'trial':>6}  {'schedule':<44}{head}   (seconds to target, each machine's clock)")
    for i, (m, row) in enumerate(zip(ms, comparison.priced)):
        cfg = m.winner.config
        schedule = (
            f"bs {cfg.batch_size}, lr {cfg.lr:.3g}, StepLR {cfg.step_size} x {cfg.gamma:.2g}, mom {cfg.momentum:.2g}"
        )
        cells = "".join(f"{'-' if p is None else seconds_text(p):>10}" for p in row)
        median = f"; confirmed median here {m.confirmed_median:.1f} s" if m.confirmed_median is not None else ""
        lines.append(f"{'machine ' + str(i + 1):<12}{m.winner.number:>6}  {schedule:<44}{cells}{median}")
    for j in range(len(ms)):
        fastest = min(
            (row[j] for row in comparison.priced if row[j] is not None and row[j].reached),
            key=lambda p: p.seconds,
            default=None,
        )
        if fastest is not None:
            owner = next(i for i, row in enumerate(comparison.priced) if row[j] is fastest)
            lines.append(f"fastest on machine {j + 1}: machine {owner + 1}'s winner, {fastest.seconds:.1f} s")
    return lines
