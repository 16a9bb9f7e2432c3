"""The saturation pruner, driven with synthetic learning curves through study.ask()/tell()."""

import math

import optuna
import pytest

from search.pruning.saturation import SaturationPruner, best_so_far_at, decays_between
from search.records.trial import CONFIG
from search.records.trial import CURVE as CURVE_ATTR

TARGET = 0.6


def _study(**kwargs) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(direction="minimize", pruner=SaturationPruner(TARGET, **kwargs))


def _curve(points, seconds_per_epoch=None):
    curve = [{"train_seconds": t, "val_accuracy": a} for t, a in points]
    if seconds_per_epoch:
        for p in curve:
            p["epoch"] = p["train_seconds"] / seconds_per_epoch
    return curve


def _finish(study, points, reached: bool):
    """A finished peer: COMPLETE at its time to target, or PRUNED."""
    trial = study.ask()
    trial.set_user_attr(CURVE_ATTR, _curve(points))
    for i, (_, a) in enumerate(points, start=1):
        trial.report(1 - a, i)
    if reached:
        study.tell(trial, points[-1][0])
    else:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)


def _decide(study, points, seconds_per_epoch=None, config=None, steps_per_epoch=None):
    """Report `points` one by one; return (index at which it was pruned, decision) or (None, None)."""
    trial = study.ask()
    if config is not None:
        trial.set_user_attr(CONFIG, config)
    for i in range(1, len(points) + 1):
        curve = _curve(points[:i], seconds_per_epoch)
        if steps_per_epoch is not None:
            for p in curve:
                p["step"] = round(p["epoch"] * steps_per_epoch)
        trial.set_user_attr(CURVE_ATTR, curve)
        trial.report(1 - points[i - 1][1], i)
        if trial.should_prune():
            return i, study.pruner.decision_for(trial.number)
    return None, None


def test_best_so_far_at_equal_time():
    pts = [(2.0, 0.3), (4.0, 0.5), (6.0, 0.45)]
    assert best_so_far_at(pts, 1.0) == 0.0
    assert best_so_far_at(pts, 4.0) == 0.5
    assert best_so_far_at(pts, 5.9) == 0.5
    assert best_so_far_at(pts, 6.0) == 0.5
    assert best_so_far_at(pts, 6.1) is None  # the curve stops before


def test_a_healthy_first_trial_is_not_pruned():
    at, _ = _decide(_study(), [(3, 0.40), (6, 0.48), (9, 0.53), (12, 0.58)])
    assert at is None


def test_chance_level_is_diverged_after_the_first_epoch():
    at, decision = _decide(_study(), [(3, 0.10), (6, 0.11), (9, 0.12)])
    assert at == 1 and decision.rule == "diverged"
    assert "chance level after 1 epoch" in decision.reason
    at, _ = _decide(_study(chance_epochs=2), [(3, 0.10), (6, 0.11), (9, 0.12)])
    assert at == 2
    # Two evaluations an epoch: the window is in epochs, so the first half epoch is spared.
    at, decision = _decide(_study(), [(1.5, 0.10), (3, 0.11), (4.5, 0.12)], seconds_per_epoch=3)
    assert at == 2 and "after 1 epoch" in decision.reason
    at, decision = _decide(_study(chance_epochs=0.5), [(1.5, 0.10), (3, 0.11)], seconds_per_epoch=3)
    assert at == 1 and "after 0.5 epochs" in decision.reason


def _decide_steps(study, points, steps_per_epoch, seconds_per_epoch=3.0):
    """Like _decide, with the optimizer steps of each evaluation in the curve."""
    return _decide(study, points, seconds_per_epoch, steps_per_epoch=steps_per_epoch)


def test_chance_level_after_half_an_epoch_of_enough_steps():
    dead = [(1.5, 0.10), (3, 0.10), (4.5, 0.10)]
    # Batch 128: half an epoch is 176 steps, enough to tell.
    at, decision = _decide_steps(_study(), dead, steps_per_epoch=352)
    assert at == 1 and decision.rule == "diverged"
    assert decision.reason.endswith("still at chance level after 0.5 epochs (176 steps)")
    # Batch 2048: half an epoch is 11 steps; judged after the whole epoch (22).
    at, decision = _decide_steps(_study(), dead, steps_per_epoch=22)
    assert at == 2 and decision.reason.endswith("after 1 epoch (22 steps)")
    at, _ = _decide_steps(_study(chance_steps=200), dead, steps_per_epoch=352)
    assert at == 2
    # Learning already at half an epoch: kept.
    at, _ = _decide_steps(_study(), [(1.5, 0.16), (3, 0.25)], steps_per_epoch=352)
    assert at is None


def test_cannot_win_once_slower_than_the_best_time_to_target():
    study = _study(lookahead=0)
    _finish(study, [(5, 0.50), (10, 0.61)], reached=True)  # best time to target: 10 s
    at, decision = _decide(study, [(4, 0.52), (8, 0.57), (12, 0.59), (16, 0.62)])
    assert at == 3 and decision.rule == "cannot_win"
    assert "trial 0 reached the target in 10.0 s" in decision.reason
    assert decision.cap == 12  # its time to target is more than the 12 s it trained


def test_cannot_win_is_exact_a_faster_trial_survives():
    study = _study(lookahead=0)
    _finish(study, [(5, 0.50), (10, 0.61)], reached=True)
    at, _ = _decide(study, [(3, 0.52), (6, 0.57), (9, 0.59)])
    assert at is None
    # By default it does not look ahead: time to target is interpolated, so a trial whose next
    # evaluation comes after the leader's time (12 s against 10 s) may still cross before it.
    study = _study()
    _finish(study, [(5, 0.50), (10, 0.61)], reached=True)
    at, _ = _decide(study, [(3, 0.52), (6, 0.57), (9, 0.59)])
    assert at is None
    # With a lookahead it bets on the next evaluation: at 9 s the next comes at about 12 s.
    study = _study(lookahead=0.9)
    _finish(study, [(5, 0.50), (10, 0.61)], reached=True)
    at, decision = _decide(study, [(3, 0.52), (6, 0.57), (9, 0.59)])
    assert at == 3 and "its next comes after trial 0's time to target" in decision.reason


def test_lookahead_cannot_win_when_the_next_evaluation_comes_too_late():
    # Leader at 10 s; evaluations 4 s apart: after 8 s the next comes at 12 s, too late.
    study = _study(lookahead=0.9)
    _finish(study, [(5, 0.50), (10, 0.61)], reached=True)
    at, decision = _decide(study, [(4, 0.52), (8, 0.57), (12, 0.59)])
    assert at == 2 and decision.rule == "cannot_win"
    assert "evaluations 4.0 s apart" in decision.reason and "trial 0's time to target, 10.0 s" in decision.reason
    assert decision.cap == 10  # its next evaluation comes after the leader's 10 s
    # Evaluations 3 s apart: at 6 s the next comes by 9 s (within 0.9 x 3 s: 8.7 s), so it may still win.
    study = _study(lookahead=0.9)
    _finish(study, [(5, 0.50), (10, 0.61)], reached=True)
    at, _ = _decide(study, [(3, 0.52), (6, 0.57), (9, 0.62)])
    assert at is None
    # Without lookahead, only trained seconds count.
    study = _study(lookahead=0.0)
    _finish(study, [(5, 0.50), (10, 0.61)], reached=True)
    at, _ = _decide(study, [(4, 0.52), (8, 0.57), (12, 0.59)])
    assert at == 3


def test_underfit_compares_at_equal_training_time_not_equal_epoch():
    study = _study(min_peers=3)
    # Peers: fast-epoch trials (2 s per epoch) that reach 0.5 by 8 s.
    for _ in range(3):
        _finish(study, [(2, 0.35), (4, 0.42), (6, 0.47), (8, 0.50), (10, 0.52)], reached=False)
    # A slow-epoch trial (5 s per epoch): at epoch 2 it has 0.47, more than the peers had at
    # epoch 2 (0.42) but less than they had after the same 10 s of training (0.52). After its
    # first epoch (5 s) it is level with them (0.42 by 5 s).
    at, decision = _decide(study, [(5, 0.42), (10, 0.47)])
    assert at == 2 and decision.rule == "underfit"
    assert "3 peers had 0.520" in decision.reason


def test_underfit_is_judged_from_the_first_evaluation_by_default():
    # Two evaluations an epoch (2 s each): behind its peers at equal time from the start, it is
    # judged at its first evaluation, half an epoch in; with min_epochs=1 only at the first epoch's end.
    peers = [(1, 0.35), (2, 0.42), (3, 0.47)]
    behind = [(1, 0.25), (2, 0.30), (3, 0.33)]
    study = _study()
    for _ in range(3):
        _finish(study, peers, reached=False)
    at, decision = _decide(study, behind, seconds_per_epoch=2)
    assert at == 1 and decision.rule == "underfit"
    assert "after 1.0 s of training, 3 peers had 0.350" in decision.reason
    study = _study(min_epochs=1.0)
    for _ in range(3):
        _finish(study, peers, reached=False)
    at, decision = _decide(study, behind, seconds_per_epoch=2)
    assert at == 2 and "after 2.0 s of training" in decision.reason


def test_underfit_needs_enough_peers():
    study = _study(min_peers=4)
    for _ in range(3):
        _finish(study, [(2, 0.45), (4, 0.52), (6, 0.55)], reached=False)
    at, _ = _decide(study, [(2, 0.30), (4, 0.35)])
    assert at is None


def test_a_trial_ahead_of_its_peers_is_kept():
    study = _study(min_peers=3)
    for _ in range(3):
        _finish(study, [(2, 0.35), (4, 0.42), (6, 0.47)], reached=False)
    at, _ = _decide(study, [(2, 0.40), (4, 0.48), (6, 0.52)])
    assert at is None


def test_plateau_below_target():
    at, decision = _decide(_study(), [(2, 0.40), (4, 0.50), (6, 0.52), (8, 0.521), (10, 0.522), (12, 0.523)])
    assert at == 6 and decision.rule == "plateau"  # the last 3 gained 0.3 points over 0.52
    assert "below the target 0.600" in decision.reason


def test_plateau_window_is_in_epochs_not_evaluations():
    # Two evaluations an epoch (1 s each): 3 epochs are 6 evaluations, so a trial flat over
    # its last 3 evaluations (1.5 epochs) is not yet judged.
    flat = [(1, 0.30), (2, 0.40), (3, 0.50), (4, 0.52), (5, 0.521), (6, 0.522), (7, 0.523)]
    at, _ = _decide(_study(), flat, seconds_per_epoch=2)
    assert at is None
    at, decision = _decide(_study(), flat + [(8, 0.523), (9, 0.523), (10, 0.524)], seconds_per_epoch=2)
    assert at == 10 and decision.rule == "plateau" and "in the last 3 epochs" in decision.reason


def test_reaching_the_target_is_never_pruned():
    study = _study()
    _finish(study, [(2, 0.62)], reached=True)  # best time 2 s
    at, _ = _decide(study, [(3, 0.65)])  # slower, but it is already there
    assert at is None


@pytest.mark.parametrize("quantile", [0.25, 0.75])
def test_quantile_sets_how_strict_underfit_is(quantile):
    study = _study(min_peers=4, peer_quantile=quantile, underfit_margin=0.0)
    for acc in (0.40, 0.45, 0.50, 0.55):
        _finish(study, [(2, acc - 0.05), (4, acc)], reached=False)
    at, _ = _decide(study, [(2, 0.40), (4, 0.47)])
    assert (at is not None) == (quantile == 0.75)


def _decide_scheduled(study, points, *, step_size, gamma=0.5, max_epochs=15, seconds_per_epoch=2.0):
    """Like _decide, for a trial whose curve has epochs and whose config has a StepLR schedule."""
    config = {"step_size": step_size, "gamma": gamma, "max_epochs": max_epochs}
    return _decide(study, points, seconds_per_epoch, config)


# 2 s per epoch, gaining 1 point per epoch from 0.50: at that rate 0.60 comes at epoch 10 (20 s).
SLOW = [(2 * e, 0.50 + 0.01 * e) for e in range(1, 13)]


def test_out_of_reach_before_the_leaders_time():
    study = _study()
    _finish(study, [(6, 0.50), (12, 0.61)], reached=True)  # the time to beat: 12 s = epoch 6 here
    at, decision = _decide_scheduled(study, SLOW, step_size=15)
    # After 4 epochs (0.54, gaining 1 point per epoch) it would have 0.56 by epoch 6.
    assert at == 4 and decision.rule == "out_of_reach"
    assert "by epoch 6.0 (12.0 s, trial 0's time to target)" in decision.reason
    study = _study(reach_epochs=0)  # the rule turned off: only the exact one remains
    _finish(study, [(6, 0.50), (12, 0.61)], reached=True)
    at, decision = _decide_scheduled(study, SLOW, step_size=15)
    assert at == 6 and decision.rule == "cannot_win"


def test_out_of_reach_waits_for_a_learning_rate_decay_before_the_horizon():
    study = _study()
    _finish(study, [(6, 0.50), (12, 0.61)], reached=True)
    # The LR decays after epoch 5, before epoch 6: the step it brings is not extrapolated.
    at, decision = _decide_scheduled(study, SLOW, step_size=5)
    assert at == 6 and decision.rule == "cannot_win"  # only the exact rule, at 12 s
    # gamma 1 never decays: judged as if no decay were scheduled.
    at, decision = _decide_scheduled(_study_with_leader(), SLOW, step_size=5, gamma=1.0)
    assert at == 4 and decision.rule == "out_of_reach"


def _study_with_leader():
    study = _study()
    _finish(study, [(6, 0.50), (12, 0.61)], reached=True)
    return study


def test_out_of_reach_within_the_epoch_budget_without_a_leader():
    # No trial has reached the target: the horizon is the 11-epoch budget. At 1 point per epoch
    # it would have 0.61 by then, so it is kept until its rate drops.
    flat_later = SLOW[:5] + [(12, 0.553), (14, 0.556), (16, 0.559)]
    at, decision = _decide_scheduled(_study(), flat_later, step_size=15, max_epochs=11)
    assert at == 6 and decision.rule == "out_of_reach"
    assert "its budget of 11 epochs" in decision.reason
    at, _ = _decide_scheduled(_study(), SLOW[:10], step_size=15, max_epochs=11)
    assert at is None
    # At its last epoch there is nothing left to extrapolate: it ends out of budget instead.
    at, _ = _decide_scheduled(_study(), SLOW[:4], step_size=15, max_epochs=4)
    assert at is None


def test_out_of_reach_with_two_evaluations_an_epoch_uses_the_last_3_epochs():
    # SLOW evaluated twice an epoch (1 s each, half a point each): the same rate, judged at
    # the same epoch as once an epoch, and not on the last 3 evaluations alone.
    half = [(1.0 * i, 0.50 + 0.005 * i) for i in range(1, 25)]
    at, decision = _decide_scheduled(_study_with_leader(), half, step_size=15, seconds_per_epoch=2.0)
    assert at == 7 and decision.rule == "out_of_reach"  # epoch 3.5, the first with 3 epochs behind it
    assert "gaining 1.00 points per epoch (last 3 epochs)" in decision.reason


def test_out_of_reach_needs_the_schedule():
    study = _study_with_leader()
    at, decision = _decide(study, [(t, a) for t, a in SLOW])  # no config, no epochs
    assert decision.rule == "cannot_win"


# The leader: 2 s per epoch, no decay in 15 epochs, at the target (0.62 > 0.6) in 10 s.
LEADER = [(2, 0.45), (4, 0.52), (6, 0.56), (8, 0.59), (10, 0.62)]


def _study_led_by(step_size=15, gamma=0.5, **kwargs):
    """A study whose one completed trial, the leader, has LEADER's curve and this schedule."""
    study = _study(**kwargs)
    trial = study.ask()
    trial.set_user_attr(CONFIG, {"step_size": step_size, "gamma": gamma, "max_epochs": 15})
    trial.set_user_attr(CURVE_ATTR, _curve(LEADER, seconds_per_epoch=2.0))
    study.tell(trial, 10.0)
    return study


def test_behind_the_leaders_curve_at_equal_time():
    # Judged from 2 s (a fifth of the leader's 10 s): 0.43 against the leader's 0.45, a point and more.
    at, decision = _decide_scheduled(_study_led_by(), [(2, 0.43), (4, 0.50), (6, 0.54)], step_size=15)
    assert at == 1 and decision.rule == "behind"
    assert decision.reason == (
        "behind the leader: validation accuracy 0.430 after 2.0 s of training, trial 0 had 0.450 by then and "
        "reached the target in 10.0 s, with no learning-rate decay to come before that"
    )
    assert decision.cap is None  # not a near miss: the sampler ranks it as pruned
    at, _ = _decide_scheduled(_study_led_by(behind_from=0.5), [(2, 0.40), (4, 0.45), (6, 0.50)], step_size=15)
    assert at == 3  # judged from 5 s only


def test_within_a_point_of_the_leader_it_trains_on_until_it_cannot_win():
    close = [(2, 0.445), (4, 0.515), (6, 0.555), (8, 0.585), (10, 0.595), (12, 0.62)]
    at, decision = _decide_scheduled(_study_led_by(), close, step_size=15)
    assert at == 5 and decision.rule == "cannot_win"
    at, decision = _decide_scheduled(_study_led_by(behind_margin=0), close, step_size=15)
    assert at == 1 and decision.rule == "behind"
    at, _ = _decide_scheduled(_study_led_by(behind_margin=1), [(2, 0.40), (4, 0.45), (6, 0.50)], step_size=15)
    assert at is None  # a margin of 1 turns the rule off


def test_behind_waits_while_a_decay_of_its_own_is_to_come():
    behind = [(2, 0.40), (4, 0.45), (6, 0.50), (8, 0.53), (10, 0.59)]
    # Its LR decays after epoch 4 (8 s), before the leader's 10 s (its epoch 5): exempt until then.
    at, decision = _decide_scheduled(_study_led_by(), behind, step_size=4)
    assert at == 5 and decision.rule == "cannot_win"
    # No decay before epoch 15, or gamma 1 (no decay at all): judged at once.
    at, decision = _decide_scheduled(_study_led_by(), behind, step_size=15)
    assert at == 1 and decision.rule == "behind"
    at, decision = _decide_scheduled(_study_led_by(), behind, step_size=4, gamma=1.0)
    assert at == 1 and decision.rule == "behind"


def test_decays_between_counts_the_boundaries_still_to_show():
    assert decays_between(4, 0.3, 2.7, 4.5) == 1
    assert decays_between(4, 0.3, 4.0, 4.5) == 1  # evaluated at epoch 4: its decay shows after
    assert decays_between(4, 0.3, 4.01, 8.0) == 0  # the decay at 8 comes too late
    assert decays_between(2, 0.3, 1.0, 4.5) == 2
    assert decays_between(2, 1.0, 0.0, 9.0) == 0
    assert decays_between(2, 0.5, 0.0, 2.0) == 0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"target": 1.2}, "target must be a number in (0, 1)"),
        ({"target": 0.0}, "target must be a number in (0, 1)"),
        ({"chance": -0.1}, "chance must be a number in [0, 1]"),
        ({"peer_quantile": 1.5}, "peer_quantile must be a number in [0, 1]"),
        ({"min_peers": 0}, "min_peers must be an integer of at least 1"),
        ({"min_peers": 2.5}, "min_peers must be an integer"),
        ({"chance_steps": -1}, "chance_steps must be an integer of at least 0"),
        ({"chance_early_epochs": -1}, "chance_early_epochs must be a number in [0, inf]"),
        ({"lookahead": -1}, "lookahead must be a number in [0, inf]"),
        ({"plateau_epochs": float("nan")}, "plateau_epochs must be a number"),
        ({"reach_epochs": "3"}, "reach_epochs must be a number"),
        ({"behind_from": -0.5}, "behind_from must be a number in [0, inf]"),
        ({"behind_margin": 1.5}, "behind_margin must be a number in [0, 1]"),
    ],
)
def test_settings_are_checked_when_the_pruner_is_made(kwargs, message):
    args = {"target": TARGET, **kwargs}
    with pytest.raises(ValueError) as info:
        SaturationPruner(args.pop("target"), **args)
    assert message in str(info.value)


def test_underfit_waits_for_a_decay_of_its_own_once_it_has_trained_part_of_the_leaders_time():
    # Peers at 0.50 by 6 s; a leader at 10 s. The trial is 0.45 at 6 s (epoch 3, 2 s an epoch):
    # underfit when the rule never waits; with underfit_waits_from=0.5 (6 s >= 5 s) its decay after epoch 4
    # (before the leader's 10 s, its epoch 5) exempts it, and without a decay to come it is underfit.
    peers = [(2, 0.35), (4, 0.45), (6, 0.50)]
    slow_start = [(2, 0.45), (4, 0.48), (6, 0.45), (8, 0.62)]

    def decided(step_size, **settings):
        study = _study_led_by(behind_margin=1, **settings)  # rule 3 off: rule 4 alone
        for _ in range(3):
            _finish(study, peers, reached=False)
        return _decide_scheduled(study, slow_start, step_size=step_size)

    at, decision = decided(step_size=4, underfit_waits_from=math.inf)  # never waits
    assert at == 3 and decision.rule == "underfit"
    at, decision = decided(step_size=4)  # the default, 0.35: 6 s >= 3.5 s
    assert at is None
    at, decision = decided(step_size=4, underfit_waits_from=0.5)
    assert at is None  # on to the target at 8 s
    at, decision = decided(step_size=15, underfit_waits_from=0.5)
    assert at == 3 and decision.rule == "underfit"
    # Before that fraction of the leader's time it is judged as ever.
    at, decision = decided(step_size=4, underfit_waits_from=0.7)
    assert at == 3 and decision.rule == "underfit"
