"""One trial of the schedule, trained and decided evaluation by evaluation.

The trial's value is its training seconds until validation accuracy first reaches the target,
in the study's clock. A trial that reaches the target COMPLETEs with that time; any other
(pruned early, diverged, or out of epochs) ends PRUNED with its reason: it never looks best,
since only completed trials have values, and TPE still learns from it: a trial the pruner
stopped as slow it sees completed at its pace, the others after the completed ones by how far
they got (search/sampling/paced.py).

Training and deciding are apart: `compute()` trains to the next evaluation (work that depends on
nothing else), `decide()` takes that evaluation's event once the schedule says it is safe
(search/run/schedule.py), with the pruner seeing only what had ended by then.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from lenet.clock import StepClock
from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from lenet.data import DeviceData
from lenet.device import DevicePolicy, is_out_of_memory
from lenet.members import MemberRun, PopulationPool
from lenet.train import TrainingRun, evaluation_steps
from search.clock.pricing import clock_seconds, lane_seconds, time_to_target
from search.pruning.as_of import prune_as_of
from search.pruning.decision import Decision, explain
from search.records.provenance import library_versions
from search.records.trial import (
    Placement,
    TrialRecord,
    TrialResult,
    TrialSetup,
    as_evaluated,
    curve_point,
    placement_of,
    write_abandoned,
    write_curve,
    write_failure,
    write_horizon,
    write_lane_end,
    write_placement,
)
from search.run.schedule import Event
from search.run.spec import TrialNote
from search.sampling.scheduled import ScheduledSampler
from search.space import SearchSpace
from search.study.view import StudyView, as_running


class TrialFailed(Exception):
    """The trial failed for good (out of device memory) with a recorded reason; the study goes on."""


@dataclass(frozen=True)
class TrialContext:
    """What every trial of one executor shares, built once."""

    study: optuna.Study
    space: SearchSpace
    target: float
    data: DeviceData
    seed: int  # every trial's training seed: the study's
    threads: int | None
    policy: DevicePolicy
    clock: StepClock | None  # None: the measured clock
    baseline: bool  # the study has a baseline: trial 0 trains it
    trial_note: TrialNote | None = None
    populations: PopulationPool | None = None  # None: every trial trains alone


class LaneTrial:
    """A trial this executor holds: asked for, placed on a lane, trained, decided."""

    def __init__(self, ctx: TrialContext, trial: optuna.Trial, generation: int = 0) -> None:
        self.ctx, self.trial = ctx, trial
        self.number = trial.number
        self.generation = generation  # the take-over that holds it (0: asked for here)
        self.placement: Placement | None = None
        self.config: TrainConfig | None = None
        self.run: TrainingRun | MemberRun | None = None
        self.steps: list[int] = []  # optimizer steps at each evaluation
        self.curve: list[dict[str, float]] = []
        self.pending: EvalRecord | None = None  # computed, not yet decided
        self.decided = 0  # evaluations decided
        self.published = 0.0  # the horizon stored for it (never lowered: a replay repeats what it knew)
        self.stored_curve = 0  # points a trial taken over had stored
        self.done = False

    # -- starting -----------------------------------------------------------------------------

    def place(self, event: Event, seen: list[tuple[optuna.trial.FrozenTrial, bool]]) -> None:
        """Start on `event`'s lane at its time: draw the parameters seeing `seen`, write the setup."""
        ctx = self.ctx
        frozen = ctx.study._storage.get_trial(self.trial._trial_id)
        sampler = ctx.study.sampler
        sampler_fixed = None
        if isinstance(sampler, ScheduledSampler):
            sampler.begin(ctx.study, frozen, [t if ended else as_running(t) for t, ended in seen])
            sampler_fixed = sampler.fixed(self.number)[1]
        self.config = ctx.space.sample(self.trial, TrainConfig(seed=ctx.seed))
        self._start_run(Placement(event.lane, event.time, event.time, None))
        TrialSetup(
            config=self.config,
            target=ctx.target,
            device=str(ctx.data.device),
            threads=ctx.threads or 0,
            data_checksum=ctx.data.checksum,
            versions=library_versions(),
            baseline=ctx.baseline and sampler_fixed == "baseline",
            warm_start=sampler.warm_sources[self.number] if sampler_fixed == "warm start" else None,
        ).write(self.trial)
        self.published = self.next_event().time
        write_placement(self.trial, event.lane, event.time, self.published)

    def take_over(self, frozen: optuna.trial.FrozenTrial) -> None:
        """Train a placed trial again from its start, as its executor did before it stopped: the
        same config, seed and decisions (a replay writes nothing that was not so already)."""
        record = TrialRecord.of(frozen)
        placement = placement_of(frozen)
        assert placement is not None and record.config is not None
        self.config = record.config
        self.stored_curve = len(record.curve)
        self.published = placement.horizon
        self._start_run(placement)

    def _start_run(self, placement: Placement) -> None:
        assert self.config is not None
        self.placement = placement
        self.steps = evaluation_steps(self.config, len(self.ctx.data.train_x))
        ctx = self.ctx
        if ctx.populations is not None:
            self.run = ctx.populations.run(self.config, threads=ctx.threads)
        else:
            self.run = TrainingRun(self.config, ctx.data, threads=ctx.threads, policy=ctx.policy)

    # -- the schedule's view of it ----------------------------------------------------------

    def next_event(self) -> Event:
        """The event of its next evaluation to decide (with the measured clock, known only once
        computed; until then, its last decided one)."""
        assert self.placement is not None and self.config is not None
        p, k = self.placement, self.decided + 1
        if self.ctx.clock is None:
            record = self.pending if self.pending is not None else (self.run.history[-1] if self.run.history else None)
            return Event(p.start + (record.wall_seconds if record else 0.0), p.lane)
        return Event(p.start + lane_seconds(self.ctx.clock, self.config, self.steps[k - 1], k), p.lane)

    @property
    def computed(self) -> bool:
        return self.pending is not None or (self.run is not None and self.run.status != "running")

    # -- training ---------------------------------------------------------------------------

    def compute(self) -> None:
        """Train to the next evaluation (the work that depends on nothing else)."""
        assert self.run is not None
        try:
            self.pending = self.run.advance()
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            what = f"{type(exc).__name__} at batch size {self.config.batch_size}: {str(exc).splitlines()[0]}"
        else:
            return
        # Here, not in the except block: the exception's traceback held the trial's tensors.
        self.release_run()
        self.run = None
        self.ctx.policy.release_memory()
        self._fail("out_of_memory", f"out of memory: {what}")
        raise TrialFailed(what)

    # -- deciding -----------------------------------------------------------------------------

    def decide(self, ended: list[optuna.trial.FrozenTrial]) -> bool:
        """Take the computed evaluation's event, the pruner seeing `ended` (the trials that had
        ended by then). True when the trial ended there."""
        ctx, config, run = self.ctx, self.config, self.run
        assert config is not None and run is not None and self.computed
        event = self.next_event()
        record, self.pending = self.pending, None
        if record is None:  # no evaluation: its loss stopped being finite (or the budget was spent)
            self._end(event, None)
            return True
        self.decided += 1
        self.curve.append(curve_point(record, clock_seconds(ctx.clock, config, record)))
        if record.epoch.is_integer():
            # Intermediate values by epoch, for the dashboard's curves and Optuna's pruners; the
            # evaluations within an epoch are in the curve, for this project's pruner.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a replay reports the same values again
                self.trial.report(1.0 - record.val_accuracy, step=int(record.epoch))
        if len(self.curve) > self.stored_curve:
            write_curve(self.trial, self.curve)
        if record.val_accuracy >= ctx.target:
            self._end(event, None)
            return True
        frozen = as_evaluated(ctx.study._storage.get_trial(self.trial._trial_id), self.curve)
        if prune_as_of(ctx.study.pruner, StudyView(ctx.study, ended), frozen):
            run.stop("pruned")
            self._end(event, explain(ctx.study.pruner, self.number, self.curve[-1]))
            return True
        if self.decided == len(self.steps):
            self._end(event, None)
            return True
        horizon = self.next_event().time if ctx.clock is not None else event.time
        if horizon > self.published:
            self.published = horizon
            write_horizon(self.trial, horizon)
        return False

    def _end(self, event: Event, pruned: Decision | None) -> None:
        ctx = self.ctx
        self.release_run()  # first: a member's weights are copied once, as it leaves its population
        result = self._result(pruned)
        result.write(self.trial)
        write_lane_end(self.trial, event.time)
        if ctx.trial_note is not None:
            ctx.trial_note(self.trial, result, ctx.target, str(ctx.data.device))
        self.done = True
        if result.clock_seconds_to_target is not None:
            ctx.study.tell(self.trial, result.clock_seconds_to_target, skip_if_finished=True)
            return
        # No value for a trial that missed the target: Optuna would store its last intermediate
        # value (a validation error, near 0) as its value, and optuna-dashboard would plot it far
        # below the winner. A NaN after the last step leaves it none.
        self.trial.report(float("nan"), step=int(result.epochs) + 1)
        ctx.study.tell(self.trial, state=TrialState.PRUNED, skip_if_finished=True)

    def _result(self, pruned: Decision | None) -> TrialResult:
        """How the trial ended: its figures in both clocks, its outcome and the reason."""
        ctx, run, config = self.ctx, self.run, self.config
        assert run is not None and config is not None
        result = run.result()
        reached = time_to_target(result.history, ctx.target, config, ctx.clock)
        if reached is not None:
            first = reached.evaluation
            rule, reason = "reached", f"reached {first.val_accuracy:.4f} >= {ctx.target:.4f} at epoch {first.epoch:.4g}"
        elif result.status == "diverged":
            rule, reason = "diverged", f"diverged: {result.reason}"
        elif pruned is not None:
            rule, reason = pruned.rule, pruned.reason
        else:
            rule, reason = (
                "budget",
                (
                    f"out of budget: best validation accuracy {result.best_val_accuracy:.4f} after "
                    f"{config.max_epochs} epochs, below the target {ctx.target:.4f}"
                ),
            )
        return TrialResult(
            best_val_accuracy=result.best_val_accuracy,
            epochs=result.epochs,
            measured_seconds=result.train_seconds,
            clock_seconds=clock_seconds(ctx.clock, config, result.history[-1]) if result.history else 0.0,
            clock_seconds_to_target=reached.clock_seconds if reached else None,
            measured_seconds_to_target=reached.measured_seconds if reached else None,
            epochs_to_target=reached.epochs if reached else None,
            images_to_target=reached.images if reached else None,
            capped_at=pruned.cap if pruned is not None else None,  # cannot_win: its time to target is at least this
            outcome=rule,
            reason=reason,
        )

    # -- stopping -----------------------------------------------------------------------------

    def release_run(self) -> None:
        """Let go of its run: a population's member gives its slot to the next trial."""
        if self.run is not None:
            self.run.release()

    def _fail(self, outcome: str, reason: str) -> None:
        """Fail for good: it takes no time of its lane, which frees where it started."""
        write_failure(self.trial, outcome, reason)
        self.release_run()
        if self.placement is not None:
            write_lane_end(self.trial, self.placement.start)
        self.done = True
        self.ctx.study.tell(self.trial, state=TrialState.FAIL, skip_if_finished=True)

    def abandon(self, why: str) -> None:
        """Stop without ending: the trial stays RUNNING, marked so that the next executor to look
        takes it over at once and trains it again from its start."""
        reason = f"{why} after {self.decided} evaluations; taken up again from its start when the study resumes"
        write_failure(self.trial, "interrupted", reason)
        write_abandoned(self.trial, reason)
        self.release_run()
        self.done = True
