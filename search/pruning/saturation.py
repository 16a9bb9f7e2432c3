"""The project's pruner: stop trials that cannot become the fastest to reach the target.

Six rules, checked in this order at every evaluation, each leaving a reason in the trial:

1. diverged: validation accuracy still at chance level after the first epoch, or after half
   an epoch that took at least `chance_steps` optimizer steps (a small batch's: a large
   batch's half epoch is too few steps to tell a slow start from none). A NaN or infinite
   loss is caught by the training loop itself;
2. cannot win: the trial has trained longer than the best time-to-target found so far in the
   study's clock without reaching the target. Time to target is interpolated between the
   evaluations that bracket the crossing, so the crossing of a trial still below the target
   lies after its last evaluation: it can no longer beat the best. (`lookahead` prunes
   earlier, on the bet that the next evaluation will not cross in time; off by default.)
   The rule applies from the first completed trial;
3. behind the leader: from a tenth of the leader's time to target on, more than a point
   below what the leader's own curve had reached by the same time in the clock, with no
   learning-rate decay of its own to come before the leader's time: it would have to gain
   more than the leader did in what is left of the leader's time, without the lift a decay
   gives (a decay still to come exempts it, as in rule 6);
4. underfit: clearly behind its finished peers at equal *training time* (not equal epoch:
   an epoch at batch 32 costs more time than one at batch 2048), once enough peers exist;
   from `underfit_waits_from` (0.35) of the leader's time on, not while a decay of its own is
   to come before the leader's time (as rules 3 and 6): a slow start is judged early, a trial
   one decay short of the target is not;
5. plateaued: no real improvement over the last epochs while still below the target;
6. out of reach: even gaining as fast as over its last epochs, it would not reach the target
   before it loses to the best time-to-target (or runs out of epochs). Learning curves
   flatten between learning-rate decays, so this linear extrapolation is optimistic; a decay
   lifts the curve by a step no extrapolation foresees, so the rule waits while one is still
   to come before that point.

The windows of rules 1, 4, 5 and 6 are in epochs, not evaluations, so that evaluating more
often (`evals_per_epoch`) gives the rules more chances to decide without making them judge
on shorter stretches of a noisy curve.

Trials store their learning curve (search/records/trial.py) before asking whether to prune;
rules 3 and 6 also read the trial's config (step_size, gamma, max_epochs).
The settings were chosen by exact replays of unpruned studies (docs/search.md, "Cheaper search").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from search.pruning.curves import EPS, best_so_far_at, curve_epochs, curve_points, epochs_text, window_start
from search.pruning.decision import Decision, ExplainingPruner
from search.records.keys import POINT_STEP
from search.records.trial import TrialRecord, curve_of
from search.study.queries import FINISHED, best_completed

# The rules' names, as decisions carry them and trials store them as their outcome.
DIVERGED, CANNOT_WIN, BEHIND, UNDERFIT, PLATEAU, OUT_OF_REACH = (
    "diverged",
    "cannot_win",
    "behind",
    "underfit",
    "plateau",
    "out_of_reach",
)
# The rules that stop a trial for being slower than the leader or its peers, not for being broken.
SLOW_RULES = (CANNOT_WIN, BEHIND, UNDERFIT, PLATEAU, OUT_OF_REACH)


@dataclass(frozen=True)
class SaturationSettings:
    """The saturation pruner's settings (see the module docstring), checked when made, as
    optuna/pruners/_percentile.py checks its own."""

    chance: float = 0.1
    chance_margin: float = 0.05
    chance_epochs: float = 1.0
    # ... or from chance_early_epochs once they took this many steps (batch 128's half epoch is 176).
    chance_early_epochs: float = 0.5
    chance_steps: int = 150
    # Rule 2 may look this fraction of the shortest interval between evaluations ahead. Off: time
    # to target is interpolated between evaluations, so a trial whose next evaluation comes
    # after the leader's time can still cross the target before it.
    lookahead: float = 0.0
    # Rule 3 judges from this fraction of the leader's time to target, a trial this far below its curve.
    behind_from: float = 0.1
    behind_margin: float = 0.01  # 1 turns the behind-the-leader rule off
    min_peers: int = 3
    # Underfit from the first evaluation, against the 65th percentile of peers: the replays of a
    # pruned and two unpruned studies kept their bests, also with timing noise; the 70th did not
    # (docs/search.md, "Cheaper search").
    min_epochs: float = 0.5
    peer_quantile: float = 0.65
    underfit_margin: float = 0.01
    # Rule 4 waits, as rules 3 and 6 do, while a decay of the trial's own is to come before the
    # leader's time, once it has trained this fraction of that time (before it, underfit stops
    # the slow starters as ever); inf: never waits. 0.35 kept every best and 85 % saved in the
    # replays, and kept the winners of seeds 10 and 12, which a rule that never waits stopped
    # one decay short (docs/search.md, "Underfit waits for a decay").
    underfit_waits_from: float = 0.35
    plateau_epochs: float = 3.0
    plateau_delta: float = 0.005
    reach_epochs: float = 3.0  # 0 turns the out-of-reach rule off

    def __post_init__(self) -> None:
        for name in ("chance", "chance_margin", "peer_quantile", "underfit_margin", "plateau_delta", "behind_margin"):
            _check_range(name, getattr(self, name), 0, 1)
        for name in (
            "lookahead",
            "behind_from",
            "chance_epochs",
            "chance_early_epochs",
            "min_epochs",
            "plateau_epochs",
            "reach_epochs",
            "underfit_waits_from",
        ):
            _check_range(name, getattr(self, name), 0, math.inf)
        for name, low in (("min_peers", 1), ("chance_steps", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}")


@dataclass(frozen=True)
class _Progress:
    """Where a trial stands at its latest evaluation."""

    number: int
    points: list[tuple[float, float]]  # (seconds in the study's clock, validation accuracy)
    epochs: list[float]
    steps: int  # optimizer steps so far
    best: float  # best validation accuracy so far

    @property
    def seconds(self) -> float:
        return self.points[-1][0]

    @property
    def epoch(self) -> float:
        return self.epochs[-1]


class SaturationPruner(ExplainingPruner):
    """Prunes trials that cannot reach the target first; see the module docstring.
    Keyword arguments are SaturationSettings' fields."""

    def __init__(self, target: float, **settings: Any) -> None:
        super().__init__()
        _check_range("target", target, 0, 1, low_open=True, high_open=True)
        self.target = target
        self.settings = SaturationSettings(**settings)

    def decide(self, study: optuna.Study, trial: FrozenTrial) -> Decision | None:
        curve = curve_of(trial)
        if not curve:
            return None
        points = curve_points(trial)
        now = _Progress(
            trial.number, points, curve_epochs(curve), curve[-1].get(POINT_STEP, 0), max(a for _, a in points)
        )
        if now.best >= self.target:
            return None  # it has reached the target: the objective completes it
        diverged = self._diverged(now)
        if diverged is not None:
            return diverged
        finished = study.get_trials(deepcopy=False, states=FINISHED)
        leader = best_completed(finished)
        return (
            self._cannot_win(now, leader)
            or self._behind(trial, now, leader)
            or self._underfit(trial, now, finished, leader)
            or self._plateau(now)
            or self._out_of_reach(trial, now, leader)
        )

    def _diverged(self, now: _Progress) -> Decision | None:
        """Rule 1: validation accuracy still at chance level after the first epoch, or after a
        half epoch of enough steps."""
        s = self.settings
        if now.best >= s.chance + s.chance_margin:
            return None
        early = now.epoch >= s.chance_early_epochs - EPS and now.steps >= s.chance_steps
        if now.epoch < s.chance_epochs - EPS and not early:
            return None
        return Decision(
            DIVERGED,
            f"diverged: validation accuracy {now.best:.3f} is still at chance level after {epochs_text(now.epoch)} "
            f"({now.steps} steps)",
        )

    def _cannot_win(self, now: _Progress, leader: FrozenTrial | None) -> Decision | None:
        """Rule 2: it has trained the leader's time to target without reaching the target."""
        if leader is None:
            return None
        times = [t for t, _ in now.points]
        gap = min(b - a for a, b in zip([0.0, *times], times))  # shortest interval between evaluations
        cap = max(now.seconds, leader.value)
        if now.seconds >= leader.value:
            return Decision(
                CANNOT_WIN,
                f"cannot win: {now.seconds:.1f} s trained, trial {leader.number} reached the target in "
                f"{leader.value:.1f} s",
                cap,
            )
        if now.seconds + self.settings.lookahead * gap >= leader.value:
            return Decision(
                CANNOT_WIN,
                f"cannot win: {now.seconds:.1f} s trained and evaluations {gap:.1f} s apart, its next comes after "
                f"trial {leader.number}'s time to target, {leader.value:.1f} s",
                cap,
            )
        return None

    def _behind(self, trial: FrozenTrial, now: _Progress, leader: FrozenTrial | None) -> Decision | None:
        """Rule 3: clearly below the leader's own curve at equal time, with no decay of its own to
        come before the leader's time."""
        s = self.settings
        if leader is None or s.behind_margin >= 1 or now.seconds <= 0 or now.seconds < s.behind_from * leader.value:
            return None
        leader_had = best_so_far_at(curve_points(leader), now.seconds)
        if leader_had is None or now.best >= leader_had - s.behind_margin:
            return None
        if _decay_to_come(trial, now, leader) is not False:
            return None  # a decay of its own is to come, or its schedule is unknown
        return Decision(
            BEHIND,
            f"behind the leader: validation accuracy {now.best:.3f} after {now.seconds:.1f} s of training, trial "
            f"{leader.number} had {leader_had:.3f} by then and reached the target in {leader.value:.1f} s, "
            f"with no learning-rate decay to come before that",
        )

    def _underfit(
        self, trial: FrozenTrial, now: _Progress, finished: list[FrozenTrial], leader: FrozenTrial | None
    ) -> Decision | None:
        """Rule 4: clearly behind its finished peers at equal training time (from
        `underfit_waits_from` of the leader's time on, not while a decay of its own is to come)."""
        s = self.settings
        if now.epoch < s.min_epochs - EPS:
            return None
        peers = [best_so_far_at(curve_points(t), now.seconds) for t in finished if t.number != now.number]
        peers = sorted(p for p in peers if p is not None)
        if len(peers) < s.min_peers:
            return None
        bar = peers[min(len(peers) - 1, int(s.peer_quantile * len(peers)))]
        if now.best >= bar - s.underfit_margin:
            return None
        if leader is not None and 0 < now.seconds and now.seconds >= s.underfit_waits_from * leader.value:
            if _decay_to_come(trial, now, leader):
                return None
        return Decision(
            UNDERFIT,
            f"underfit: validation accuracy {now.best:.3f} after {now.seconds:.1f} s of training, "
            f"{len(peers)} peers had {bar:.3f} (quantile {s.peer_quantile:g}) by then",
        )

    def _plateau(self, now: _Progress) -> Decision | None:
        """Rule 5: no real improvement over the last epochs while still below the target."""
        split = window_start(now.epochs, self.settings.plateau_epochs)
        if split is None:
            return None
        before = max(a for _, a in now.points[:split])
        recent = max(a for _, a in now.points[split:])
        if recent - before >= self.settings.plateau_delta:
            return None
        change = (
            f"gained {100 * (recent - before):.2f} points" if recent > before else f"did not improve on {before:.3f}"
        )
        return Decision(
            PLATEAU,
            f"plateaued: best validation accuracy {now.best:.3f} {change} in the last "
            f"{epochs_text(self.settings.plateau_epochs)}, below the target {self.target:.3f}",
        )

    def _out_of_reach(self, trial: FrozenTrial, now: _Progress, leader: FrozenTrial | None) -> Decision | None:
        """Rule 6: even gaining as fast as over its last epochs, it would not reach the target
        before it loses to the leader (or runs out of epochs)."""
        config = TrialRecord.of(trial).config
        reach_epochs = self.settings.reach_epochs
        split = window_start(now.epochs, reach_epochs) if reach_epochs > 0 else None
        if config is None or split is None:
            return None
        horizon, limit = float(config.max_epochs), f"its budget of {config.max_epochs} epochs"
        if leader is not None and now.seconds > 0:
            leader_epoch = leader.value * now.epoch / now.seconds  # this trial's epochs in the leader's time
            if leader_epoch < horizon:
                horizon, limit = leader_epoch, f"{leader.value:.1f} s, trial {leader.number}'s time to target"
        if horizon <= now.epoch + EPS:
            return None  # its last epoch: it ends out of budget, which says it better
        if decays_between(config.step_size, config.gamma, now.epoch, horizon) > 0:
            return None
        before = max(a for _, a in now.points[:split])
        rate = max(0.0, now.best - before) / (now.epoch - now.epochs[split - 1])
        reach = now.best + rate * (horizon - now.epoch)
        if reach >= self.target:
            return None
        return Decision(
            OUT_OF_REACH,
            f"out of reach: gaining {100 * rate:.2f} points per epoch (last {epochs_text(reach_epochs)}), "
            f"it would have {reach:.3f} by epoch {horizon:.1f} ({limit}), below the target {self.target:.3f}",
        )


def _decay_to_come(trial: FrozenTrial, now: _Progress, leader: FrozenTrial) -> bool | None:
    """Whether a decay of the trial's own is to come before the leader's time to target (in this
    trial's epochs at its pace so far); None where its schedule is unknown. `now.seconds` > 0."""
    config = TrialRecord.of(trial).config
    if config is None:
        return None
    leader_epoch = leader.value * now.epoch / now.seconds  # this trial's epochs in the leader's time
    return decays_between(config.step_size, config.gamma, now.epoch, leader_epoch) > 0


def decays_between(step_size: int, gamma: float, start_epoch: float, end_epoch: float) -> int:
    """StepLR decays that show in a curve after `start_epoch` and before `end_epoch`: those at
    epoch boundaries in [start, end), a decay at the boundary of an evaluation coming after it."""
    if gamma >= 1 or end_epoch <= start_epoch:
        return 0
    first = math.ceil(start_epoch / step_size - EPS)
    last = math.ceil(end_epoch / step_size - EPS) - 1
    return max(0, last - max(first, 1) + 1)


def _check_range(
    name: str, value: float, low: float, high: float, low_open: bool = False, high_open: bool = False
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        span = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {span}, got {value!r}")
