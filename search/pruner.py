"""The project's pruner: stop trials that cannot become the fastest to reach the target.

Five rules, checked in this order at every evaluation, each leaving a reason in the trial:

1. diverged: validation accuracy still at chance level after the first epoch (a NaN or
   infinite loss is caught by the training loop itself);
2. cannot win: the trial has trained longer than the best time-to-target found so far in the
   study's clock without reaching the target. Time to target is interpolated between the
   evaluations that bracket the crossing, so the crossing of a trial still below the target
   lies after its last evaluation: it can no longer beat the best. (`lookahead` prunes
   earlier, on the bet that the next evaluation will not cross in time; off by default.)
   The rule applies from the first completed trial;
3. underfit: clearly behind its finished peers at equal *training time* (not equal epoch:
   an epoch at batch 32 costs more time than one at batch 2048), once enough peers exist;
4. plateaued: no real improvement over the last epochs while still below the target;
5. out of reach: even gaining as fast as over its last epochs, it would not reach the target
   before it loses to the best time-to-target (or runs out of epochs). Learning curves
   flatten between learning-rate decays, so this linear extrapolation is optimistic; a decay
   lifts the curve by a step no extrapolation foresees, so the rule waits while one is still
   to come before that point.

The windows of rules 1, 3, 4 and 5 are in epochs, not evaluations, so that evaluating more
often (`evals_per_epoch`) gives the rules more chances to decide without making them judge
on shorter stretches of a noisy curve.

Trials store their learning curve in their record (search/record.py: points with
`train_seconds`, `val_accuracy` and `epoch`) before asking whether to prune; rule 5 also
reads the trial's config (step_size, gamma, max_epochs).

The contract with the objective: after `should_prune()` said yes, `explain(pruner, number,
point)` gives the decision, a rule and a reason; an `ExplainingPruner` keeps its own, and
Optuna's pruners get a generic one.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial

from search.record import CurvePoint, TrialRecord, curve_of, point_seconds
from search.trials import FINISHED, best_completed


@dataclass(frozen=True)
class Decision:
    rule: str  # diverged | cannot_win | underfit | plateau | out_of_reach
    reason: str
    # cannot_win only: a lower bound on the trial's time to target, the best time it was
    # stopped at (its "cap"); see search/capped.py for what the sampler makes of it.
    cap: float | None = None


def curve_points(trial: FrozenTrial) -> list[tuple[float, float]]:
    """(training seconds, validation accuracy) at each evaluation of `trial`."""
    return [(point_seconds(p), p["val_accuracy"]) for p in curve_of(trial)]


def best_so_far_at(points: Sequence[tuple[float, float]], seconds: float) -> float | None:
    """Best validation accuracy a curve had reached by `seconds` of training, or None if the
    curve does not extend that far (its trial stopped earlier)."""
    if not points or points[-1][0] < seconds:
        return None
    times = [t for t, _ in points]
    upto = bisect.bisect_right(times, seconds)
    return max((a for _, a in points[:upto]), default=0.0)


class ExplainingPruner(BasePruner):
    """A pruner that says why: the last decision that pruned each trial number."""

    def __init__(self) -> None:
        self._decisions: dict[int, Decision] = {}

    def decision_for(self, number: int) -> Decision | None:
        """Why this pruner last pruned trial `number` (in this process), or None."""
        return self._decisions.get(number)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        decision = self.decide(study, trial)
        if decision is not None:
            self._decisions[trial.number] = decision
        return decision is not None

    def decide(self, study: optuna.Study, trial: FrozenTrial) -> Decision | None:
        raise NotImplementedError


def explain(pruner: BasePruner, number: int, point: CurvePoint) -> Decision:
    """Why `pruner` pruned trial `number` at evaluation `point`: its own decision if it keeps
    them, else one that names the pruner and where it stopped the trial."""
    if isinstance(pruner, ExplainingPruner):
        decision = pruner.decision_for(number)
        if decision is not None:
            return decision
    name = type(pruner).__name__.removesuffix("Pruner").lower()
    reason = (
        f"{name} pruner: validation error {1 - point['val_accuracy']:.4f} at epoch {point['epoch']:.4g} "
        f"({point['train_seconds']:.1f} s)"
    )
    return Decision(name, reason)


@dataclass(frozen=True)
class SaturationSettings:
    """The saturation pruner's settings (see the module docstring), checked when made, as
    optuna/pruners/_percentile.py checks its own."""

    chance: float = 0.1
    chance_margin: float = 0.05
    chance_epochs: float = 1.0
    # Rule 2 may look this fraction of the shortest interval between evaluations ahead. Off: time
    # to target is interpolated between evaluations, so a trial whose next evaluation comes
    # after the leader's time can still cross the target before it.
    lookahead: float = 0.0
    min_peers: int = 3
    # Underfit is judged from the first epoch's end. Replayed exactly (in the calibrated clock) on
    # two unpruned 30-trial studies and three pruned ones, 1.0 against 1.5 kept every best and saved
    # 0.7-1.1 points of the unpruned studies' time and 2-10 % of the pruned studies' (docs/search.md).
    min_epochs: float = 1.0
    peer_quantile: float = 0.5
    underfit_margin: float = 0.01
    plateau_epochs: float = 3.0
    plateau_delta: float = 0.005
    reach_epochs: float = 3.0  # 0 turns the out-of-reach rule off

    def __post_init__(self) -> None:
        for name in ("chance", "chance_margin", "peer_quantile", "underfit_margin", "plateau_delta"):
            _check_range(name, getattr(self, name), 0, 1)
        for name in ("lookahead", "chance_epochs", "min_epochs", "plateau_epochs", "reach_epochs"):
            _check_range(name, getattr(self, name), 0, math.inf)
        if isinstance(self.min_peers, bool) or not isinstance(self.min_peers, int) or self.min_peers < 1:
            raise ValueError(f"min_peers must be an integer of at least 1, got {self.min_peers!r}")


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
        epochs = curve_epochs(curve)
        seconds, now = points[-1][0], epochs[-1]
        best = max(a for _, a in points)
        if best >= self.target:
            return None  # it has reached the target: the objective completes it

        if now >= self.settings.chance_epochs - EPS and best < self.settings.chance + self.settings.chance_margin:
            return Decision(
                "diverged",
                f"diverged: validation accuracy {best:.3f} is still at chance level after {epochs_text(now)}",
            )

        finished = study.get_trials(deepcopy=False, states=FINISHED)
        leader = best_completed(finished)
        if leader is not None:
            times = [t for t, _ in points]
            gap = min(b - a for a, b in zip([0.0, *times], times))  # shortest interval between evaluations
            cap = max(seconds, leader.value)
            if seconds >= leader.value:
                return Decision(
                    "cannot_win",
                    f"cannot win: {seconds:.1f} s trained, trial {leader.number} reached the target in {leader.value:.1f} s",
                    cap,
                )
            if seconds + self.settings.lookahead * gap >= leader.value:
                return Decision(
                    "cannot_win",
                    f"cannot win: {seconds:.1f} s trained and evaluations {gap:.1f} s apart, its next comes after "
                    f"trial {leader.number}'s time to target, {leader.value:.1f} s",
                    cap,
                )

        if now >= self.settings.min_epochs - EPS:
            peers = [best_so_far_at(curve_points(t), seconds) for t in finished if t.number != trial.number]
            peers = sorted(p for p in peers if p is not None)
            if len(peers) >= self.settings.min_peers:
                bar = peers[min(len(peers) - 1, int(self.settings.peer_quantile * len(peers)))]
                if best < bar - self.settings.underfit_margin:
                    return Decision(
                        "underfit",
                        f"underfit: validation accuracy {best:.3f} after {seconds:.1f} s of training, "
                        f"{len(peers)} peers had {bar:.3f} (quantile {self.settings.peer_quantile:g}) by then",
                    )

        split = _window_start(epochs, self.settings.plateau_epochs)
        if split is not None:
            before = max(a for _, a in points[:split])
            recent = max(a for _, a in points[split:])
            if recent - before < self.settings.plateau_delta:
                change = (
                    f"gained {100 * (recent - before):.2f} points" if recent > before else f"did not improve on {before:.3f}"
                )
                return Decision(
                    "plateau",
                    f"plateaued: best validation accuracy {best:.3f} {change} in the last "
                    f"{epochs_text(self.settings.plateau_epochs)}, below the target {self.target:.3f}",
                )
        return self._out_of_reach(trial, points, epochs, best, leader)

    def _out_of_reach(
        self,
        trial: FrozenTrial,
        points: list[tuple[float, float]],
        epochs: list[float],
        best: float,
        leader: FrozenTrial | None,
    ) -> Decision | None:
        config = TrialRecord.of(trial).config
        split = _window_start(epochs, self.settings.reach_epochs) if self.settings.reach_epochs > 0 else None
        if config is None or split is None:
            return None
        epoch, seconds = epochs[-1], points[-1][0]
        horizon, limit = float(config.max_epochs), f"its budget of {config.max_epochs} epochs"
        if leader is not None and seconds > 0:
            leader_epoch = leader.value * epoch / seconds  # this trial's epochs in the leader's time
            if leader_epoch < horizon:
                horizon, limit = leader_epoch, f"{leader.value:.1f} s, trial {leader.number}'s time to target"
        if horizon <= epoch + EPS:
            return None  # its last epoch: it ends out of budget, which says it better
        step = config.step_size
        # Decays at epoch boundaries >= `epoch` have not shown in the curve yet.
        if config.gamma < 1 and math.ceil(epoch / step - EPS) * step < horizon:
            return None
        before = max(a for _, a in points[:split])
        rate = max(0.0, best - before) / (epoch - epochs[split - 1])
        reach = best + rate * (horizon - epoch)
        if reach >= self.target:
            return None
        return Decision(
            "out_of_reach",
            f"out of reach: gaining {100 * rate:.2f} points per epoch (last {epochs_text(self.settings.reach_epochs)}), "
            f"it would have {reach:.3f} by epoch {horizon:.1f} ({limit}), below the target {self.target:.3f}",
        )


def _check_range(name: str, value: float, low: float, high: float, low_open: bool = False, high_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        span = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {span}, got {value!r}")


EPS = 1e-6  # evaluation epochs are fractions like 0.52 or 2.0; compare them with a tolerance


def curve_epochs(curve: Sequence[dict]) -> list[float]:
    """The epoch of each evaluation; a curve without epochs counts one evaluation an epoch."""
    return [p.get("epoch", i) for i, p in enumerate(curve, start=1)]


def _window_start(epochs: Sequence[float], span: float) -> int | None:
    """Index of the first evaluation within the last `span` epochs, or None when the curve
    does not reach back that far (there must be an evaluation `span` epochs ago or earlier)."""
    split = bisect.bisect_right(epochs, epochs[-1] - span + EPS)
    return split if split >= 1 else None


def epochs_text(epochs: float) -> str:
    """'1 epoch', '1.5 epochs', '6.5 epochs': evaluation epochs as the trial lines print them."""
    return f"{epochs:.4g} epoch{'' if epochs == 1 else 's'}"
