"""The project's pruner: stop trials that cannot become the fastest to reach the target.

Five rules, checked in this order at every evaluation, each leaving a reason in the trial:

1. diverged: validation accuracy still at chance level after the first evaluation (a NaN
   or infinite loss is caught by the training loop itself);
2. cannot win: the trial has trained longer than the best time-to-target found so far. It
   can no longer beat it, so the rule is exact and applies from the first completed trial;
3. underfit: clearly behind its finished peers at equal *training time* (not equal epoch:
   an epoch at batch 32 costs more time than one at batch 2048), once enough peers exist;
4. plateaued: no real improvement over the last evaluations while still below the target;
5. out of reach: even gaining as fast as over its last evaluations, it would not reach the
   target before it loses to the best time-to-target (or runs out of epochs). Learning curves
   flatten between learning-rate decays, so this linear extrapolation is optimistic; a decay
   lifts the curve by a step no extrapolation foresees, so the rule waits while one is still
   to come before that point.

Trials report their learning curve as the user attribute `curve` (a list of points with
`train_seconds`, `val_accuracy` and, for rule 5, `epoch`) before asking whether to prune;
rule 5 also reads the trial's `config` attribute (step_size, gamma, max_epochs).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from search.trials import best_completed

CURVE_ATTR = "curve"


@dataclass(frozen=True)
class Decision:
    rule: str  # diverged | cannot_win | underfit | plateau | out_of_reach
    reason: str


def curve_points(trial: FrozenTrial) -> list[tuple[float, float]]:
    """(training seconds, validation accuracy) at each evaluation of `trial`."""
    return [(p["train_seconds"], p["val_accuracy"]) for p in trial.user_attrs.get(CURVE_ATTR, [])]


def best_so_far_at(points: Sequence[tuple[float, float]], seconds: float) -> float | None:
    """Best validation accuracy a curve had reached by `seconds` of training, or None if the
    curve does not extend that far (its trial stopped earlier)."""
    if not points or points[-1][0] < seconds:
        return None
    times = [t for t, _ in points]
    upto = bisect.bisect_right(times, seconds)
    return max((a for _, a in points[:upto]), default=0.0)


class SaturationPruner(BasePruner):
    """Prunes trials that cannot reach the target first; see the module docstring.

    `reasons[trial_number]` holds the last decision for each trial this instance pruned.
    """

    def __init__(
        self,
        target: float,
        *,
        chance: float = 0.1,
        chance_margin: float = 0.05,
        chance_after: int = 1,
        min_peers: int = 3,
        min_evals: int = 2,
        peer_quantile: float = 0.5,
        underfit_margin: float = 0.01,
        plateau_evals: int = 3,
        plateau_delta: float = 0.005,
        reach_evals: int = 3,  # 0 turns the out-of-reach rule off
    ) -> None:
        self.target = target
        self.chance = chance
        self.chance_margin = chance_margin
        self.chance_after = chance_after
        self.min_peers = min_peers
        self.min_evals = min_evals
        self.peer_quantile = peer_quantile
        self.underfit_margin = underfit_margin
        self.plateau_evals = plateau_evals
        self.plateau_delta = plateau_delta
        self.reach_evals = reach_evals
        self.reasons: dict[int, Decision] = {}

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        decision = self.decide(study, trial)
        if decision is not None:
            self.reasons[trial.number] = decision
        return decision is not None

    def decide(self, study: optuna.Study, trial: FrozenTrial) -> Decision | None:
        points = curve_points(trial)
        if not points:
            return None
        seconds, _ = points[-1]
        best = max(a for _, a in points)
        if best >= self.target:
            return None  # it has reached the target: the objective completes it

        if len(points) >= self.chance_after and best < self.chance + self.chance_margin:
            return Decision(
                "diverged",
                f"diverged: validation accuracy {best:.3f} is still at chance level after {len(points)} evaluation{'' if len(points) == 1 else 's'}",
            )

        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        leader = best_completed(finished)
        if leader is not None and seconds >= leader.value:
            return Decision(
                "cannot_win",
                f"cannot win: {seconds:.1f} s trained, trial {leader.number} reached the target in {leader.value:.1f} s",
            )

        if len(points) >= self.min_evals:
            peers = [best_so_far_at(curve_points(t), seconds) for t in finished if t.number != trial.number]
            peers = sorted(p for p in peers if p is not None)
            if len(peers) >= self.min_peers:
                bar = peers[min(len(peers) - 1, int(self.peer_quantile * len(peers)))]
                if best < bar - self.underfit_margin:
                    return Decision(
                        "underfit",
                        f"underfit: validation accuracy {best:.3f} after {seconds:.1f} s of training, "
                        f"{len(peers)} peers had {bar:.3f} (quantile {self.peer_quantile:g}) by then",
                    )

        k = self.plateau_evals
        if len(points) > k:
            before = max(a for _, a in points[:-k])
            recent = max(a for _, a in points[-k:])
            if recent - before < self.plateau_delta:
                change = (
                    f"gained {100 * (recent - before):.2f} points" if recent > before else f"did not improve on {before:.3f}"
                )
                return Decision(
                    "plateau",
                    f"plateaued: best validation accuracy {best:.3f} {change} in the last {k} evaluations, "
                    f"below the target {self.target:.3f}",
                )
        return self._out_of_reach(trial, best, leader)

    def _out_of_reach(self, trial: FrozenTrial, best: float, leader: FrozenTrial | None) -> Decision | None:
        curve = trial.user_attrs.get(CURVE_ATTR, [])
        config = trial.user_attrs.get("config")
        k = self.reach_evals
        if k < 1 or not config or len(curve) <= k or any("epoch" not in p for p in curve):
            return None
        epoch, seconds = curve[-1]["epoch"], curve[-1]["train_seconds"]
        horizon, limit = float(config["max_epochs"]), f"its budget of {config['max_epochs']} epochs"
        if leader is not None and seconds > 0:
            leader_epoch = leader.value * epoch / seconds  # this trial's epochs in the leader's time
            if leader_epoch < horizon:
                horizon, limit = leader_epoch, f"{leader.value:.1f} s, trial {leader.number}'s time to target"
        if horizon <= epoch:
            return None  # its last epoch: it ends out of budget, which says it better
        step = config["step_size"]
        # Decays at epoch boundaries >= `epoch` have not shown in the curve yet.
        if config["gamma"] < 1 and math.ceil(epoch / step) * step < horizon:
            return None
        before = max(p["val_accuracy"] for p in curve[:-k])
        rate = max(0.0, best - before) / (epoch - curve[-k - 1]["epoch"])
        reach = best + rate * (horizon - epoch)
        if reach >= self.target:
            return None
        return Decision(
            "out_of_reach",
            f"out of reach: gaining {100 * rate:.2f} points per epoch (last {k} evaluations), it would have "
            f"{reach:.3f} by epoch {horizon:.1f} ({limit}), below the target {self.target:.3f}",
        )
