"""The saturation pruner, driven with synthetic learning curves through study.ask()/tell()."""

import optuna
import pytest

from search.pruner import CURVE_ATTR, SaturationPruner, best_so_far_at

TARGET = 0.6


def _study(**kwargs) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(direction="minimize", pruner=SaturationPruner(TARGET, **kwargs))


def _curve(points):
    return [{"train_seconds": t, "val_accuracy": a} for t, a in points]


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


def _decide(study, points):
    """Report `points` one by one; return (index at which it was pruned, decision) or (None, None)."""
    trial = study.ask()
    for i in range(1, len(points) + 1):
        trial.set_user_attr(CURVE_ATTR, _curve(points[:i]))
        trial.report(1 - points[i - 1][1], i)
        if trial.should_prune():
            return i, study.pruner.reasons[trial.number]
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


def test_chance_level_is_diverged_after_two_evaluations():
    at, decision = _decide(_study(), [(3, 0.10), (6, 0.11), (9, 0.12)])
    assert at == 2 and decision.rule == "diverged"
    assert "chance level" in decision.reason


def test_cannot_win_once_slower_than_the_best_time_to_target():
    study = _study()
    _finish(study, [(5, 0.50), (10, 0.61)], reached=True)  # best time to target: 10 s
    at, decision = _decide(study, [(4, 0.52), (8, 0.57), (12, 0.59), (16, 0.62)])
    assert at == 3 and decision.rule == "cannot_win"
    assert "trial 0 reached the target in 10.0 s" in decision.reason


def test_cannot_win_is_exact_a_faster_trial_survives():
    study = _study()
    _finish(study, [(5, 0.50), (10, 0.61)], reached=True)
    at, _ = _decide(study, [(3, 0.52), (6, 0.57), (9, 0.59)])
    assert at is None


def test_underfit_compares_at_equal_training_time_not_equal_epoch():
    study = _study(min_peers=3)
    # Peers: fast-epoch trials (2 s per epoch) that reach 0.5 by 8 s.
    for _ in range(3):
        _finish(study, [(2, 0.35), (4, 0.42), (6, 0.47), (8, 0.50), (10, 0.52)], reached=False)
    # A slow-epoch trial (5 s per epoch): at epoch 2 it has 0.47, more than the peers had at
    # epoch 2 (0.42) but less than they had after the same 10 s of training (0.52).
    at, decision = _decide(study, [(5, 0.40), (10, 0.47)])
    assert at == 2 and decision.rule == "underfit"
    assert "3 peers had 0.520" in decision.reason


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
