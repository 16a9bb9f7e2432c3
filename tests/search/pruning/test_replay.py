"""Replays of a real unpruned study through the saturation pruner.

tests/data/unpruned-30-s10.db: `optimize --trials 30 --seed 10 --pruner none --lanes 1` on the real
CIFAR-10 archive (commit c03a1e4, 2 cores of an AMD EPYC; docs/search.md, "Cheaper search"); every
trial ran to the target or its 15-epoch budget, so each setting's decisions replay exactly.
tests/data/default-100-0972103.db: the README's main job, `optimize --trials 100 --jobs 1` (commit
0972103, the pruner before 96087f8's underfit settings; 2 cores of an Intel Xeon, family 6 model
207): a pruned study, so a replay can only stop its trials sooner, and shows what that saves.
tests/data/unpruned-30-s11.db: the held-out unpruned study, seed 11, in seed 10's clock (`--clock-from
study:unpruned-30-s10`; commit 4bd9d4d, 2 cores of an AMD EPYC with AVX2 only).
tests/data/unpruned-q4-30-s11.db: seed 11 again, evaluated 4 times an epoch (`--evals-per-epoch 4
--pruner none --clock-from study:unpruned-30-s10`; commit 2a34821, 2 cores of an Intel Xeon, family 6
model 167): its curves thinned to every second evaluation are the ones a run evaluated twice an
epoch records, so it replays both settings on the same trials (docs/search.md, "Four evaluations
an epoch, replayed").
"""

import math
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.pruning.replay import feed, in_orders, records, replay, thinned, winners_stopped
from search.pruning.saturation import SaturationPruner
from search.records.keys import POINT_CLOCK_SECONDS
from search.records.study import study_record

DATA = Path(__file__).parents[2] / "data" / "unpruned-30-s10.db"
PRUNED = Path(__file__).parents[2] / "data" / "default-100-0972103.db"
HELD_OUT = Path(__file__).parents[2] / "data" / "unpruned-30-s11.db"
QUARTERS = Path(__file__).parents[2] / "data" / "unpruned-q4-30-s11.db"
NEVER_WAITS = {"underfit_waits_from": math.inf}  # rule 4 before it waited for a decay (1418a9e and before)
BEFORE = {"behind_margin": 1.0, "chance_steps": 10**9, "min_epochs": 1.0, "peer_quantile": 0.5} | NEVER_WAITS
AT_0972103 = {"min_epochs": 1.0, "peer_quantile": 0.5, "behind_from": 0.2} | NEVER_WAITS  # the pruned study's own


def _copy_of(tmp_path_factory, data: Path, name: str) -> optuna.Study:
    """The stored study, loaded from a copy (a replay writes nothing, but a test leaves data alone)."""
    copy = tmp_path_factory.mktemp("replay") / data.name
    shutil.copy(data, copy)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=f"sqlite:///{copy}")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> optuna.Study:
    return _copy_of(tmp_path_factory, DATA, "unpruned-30-s10")


@pytest.fixture(scope="module")
def pruned(tmp_path_factory) -> optuna.Study:
    return _copy_of(tmp_path_factory, PRUNED, "lenet5-cifar10")


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> optuna.Study:
    return _copy_of(tmp_path_factory, HELD_OUT, "unpruned-30-s11")


@pytest.fixture(scope="module")
def quarters(tmp_path_factory) -> optuna.Study:
    return _copy_of(tmp_path_factory, QUARTERS, "q4-none-30-s11")


def _best(source: optuna.Study) -> float:
    return min(t.value for t in source.trials if t.state == TrialState.COMPLETE)


def test_the_defaults_keep_the_best_and_save_more_than_before(source):
    target = study_record(source).target
    now, before = replay(source, target), replay(source, target, **BEFORE)
    assert now.best == pytest.approx(_best(source)) == pytest.approx(before.best)
    assert before.saved == pytest.approx(0.806, abs=0.001)
    assert now.saved == pytest.approx(0.869, abs=0.001)  # 0.877 never waiting for a decay
    assert replay(source, target, **NEVER_WAITS).saved == pytest.approx(0.877, abs=0.001)
    assert now.outcomes["behind"] == 12 and before.outcomes["behind"] == 0
    assert sum(now.outcomes.values()) == len(records(source)) == 30


def test_the_behind_rule_stops_no_would_be_winner_the_rules_before_let_through(source):
    target = study_record(source).target
    pairs, stopped_now = winners_stopped(source, target)
    _, stopped_before = winners_stopped(source, target, **BEFORE)
    assert pairs == 13 * 12 // 2  # 13 trials reached the target
    # The same three pairs (trial 8 against the slower 18 and 25, trial 3 against 27), stopped
    # before by the out-of-reach rule; the behind rule now stops two of them sooner.
    assert {(f, lead) for f, lead, _ in stopped_now} == {(f, lead) for f, lead, _ in stopped_before}
    assert {rule for _, _, rule in stopped_before} == {"out_of_reach"}
    assert sorted(rule for _, _, rule in stopped_now) == ["behind", "behind", "out_of_reach"]


def test_every_decision_on_real_curves_is_one_line(source):
    target = study_record(source).target
    pruner = SaturationPruner(target)
    study = optuna.create_study(direction="minimize", pruner=pruner)
    words = {"diverged": "diverged: ", "behind": "behind the leader: ", "underfit": "underfit: "}
    words |= {"cannot_win": "cannot win: ", "plateau": "plateaued: ", "out_of_reach": "out of reach: "}
    for past in records(source):
        outcome, _ = feed(study, pruner, past, past.curve, target)
        number = study.trials[-1].number
        if outcome == "reached":
            study.tell(number, past.clock_seconds_to_target)
            continue
        if outcome in words:
            reason = pruner.decision_for(number).reason
            assert reason.startswith(words[outcome]) and "\n" not in reason
        study.tell(number, state=TrialState.PRUNED)


def test_a_pruned_study_replays_exactly_with_its_own_settings_and_the_defaults_stop_sooner(pruned):
    target = study_record(pruned).target
    own, now = replay(pruned, target, **AT_0972103), replay(pruned, target)
    assert own.saved == pytest.approx(0.0, abs=1e-9)  # the study's own decisions, to the evaluation
    assert own.outcomes == {
        "underfit": 63,
        "cannot_win": 12,
        "behind": 9,
        "diverged": 8,
        "reached": 4,
        "out_of_reach": 4,
    }
    assert now.best == pytest.approx(own.best) == pytest.approx(_best(pruned))
    assert now.saved == pytest.approx(0.208, abs=0.001)  # 0.272 never waiting for a decay
    assert replay(pruned, target, **NEVER_WAITS).saved == pytest.approx(0.272, abs=0.001)
    assert replay(pruned, target, peer_quantile=0.6, **NEVER_WAITS).saved == pytest.approx(0.207, abs=0.001)
    assert now.outcomes["reached"] == 4
    pairs, stopped = winners_stopped(pruned, target)
    assert (pairs, stopped) == (6, [])


def test_the_held_out_study_keeps_its_best_and_saves_what_the_goal_asks(held_out):
    target = study_record(held_out).target
    now, before = replay(held_out, target), replay(held_out, target, **BEFORE)
    assert now.best == pytest.approx(_best(held_out)) == pytest.approx(before.best)
    assert before.saved == pytest.approx(0.771, abs=0.001)
    assert now.saved == pytest.approx(0.855, abs=0.001)  # the goal: 85 % (0.871 never waiting)
    assert sum(now.outcomes.values()) == len(records(held_out)) == 30
    pairs, stopped_now = winners_stopped(held_out, target)
    _, stopped_before = winners_stopped(held_out, target, **BEFORE)
    assert pairs == 12 * 11 // 2  # 12 trials reached the target
    # One pair more than before: trial 21 against the slower leader 26, by the behind rule.
    assert {(f, lead) for f, lead, _ in stopped_now} - {(f, lead) for f, lead, _ in stopped_before} == {(21, 26)}


def test_a_study_thinned_to_once_an_epoch_replays_its_whole_epoch_evaluations(source):
    target = study_record(source).target
    assert [r.curve for r in records(source, 2)] == [r.curve for r in records(source)]  # its own: unchanged
    for full, once in zip(records(source), records(source, 1), strict=True):
        assert once.config.evals_per_epoch == 1 and once.curve[-1] == full.curve[-1]  # a run stops where it ends
        assert all(p in full.curve and p["epoch"] == round(p["epoch"]) for p in once.curve[:-1])
        assert len(once.curve) == (len(full.curve) + 1) // 2
        if full.clock_seconds_to_target is None:
            assert once.clock_seconds_to_target is None
        else:  # interpolated anew between the last two evaluations kept (the run stopped on reaching it)
            before = once.curve[-2][POINT_CLOCK_SECONDS] if len(once.curve) > 1 else 0.0
            assert before < once.clock_seconds_to_target <= once.curve[-1][POINT_CLOCK_SECONDS]
    # Evaluating once an epoch, the rules decide half as often: the same best, less saved.
    coarse, fine = replay(records(source, 1), target), replay(source, target)
    assert coarse.best == pytest.approx(fine.best) == pytest.approx(_best(source))
    assert coarse.saved == pytest.approx(0.790, abs=0.001) and fine.saved == pytest.approx(0.869, abs=0.001)


def test_thinning_needs_a_divisor_of_the_evaluations_made(source):
    with pytest.raises(ValueError, match="evaluated 2 times an epoch: cannot thin it to 3"):
        thinned(records(source)[0], 3)


def test_shuffled_orders_show_what_the_study_order_hides(source, held_out):
    target = study_record(source).target
    assert replay(records(source), target) == replay(source, target)  # the records in their order: the study
    shuffled = in_orders(records(source), target, 20)
    assert shuffled == in_orders(records(source), target, 20)  # seeded
    # Seed 10's best (trial 16, 17.8 s) is kept in its own order but lost in 3 of 20 others, each time
    # to trial 12 (18.1 s): underfit with few peers (docs/search.md, "Four evaluations an epoch, replayed").
    assert (shuffled.kept, shuffled.orders) == (17, 20)
    assert shuffled.lost == pytest.approx([18.068, 18.068, 18.068], abs=0.001)
    assert shuffled.median_saved == pytest.approx(0.831, abs=0.001)
    assert in_orders(records(held_out), study_record(held_out).target, 20).kept == 20


def test_four_evaluations_an_epoch_stop_the_best_that_two_keep(quarters):
    target = study_record(quarters).target
    assert _best(quarters) == pytest.approx(16.920, abs=0.001)  # trial 27
    four, two = replay(records(quarters), target), replay(records(quarters, 2), target)
    assert two.best == pytest.approx(_best(quarters)) and two.saved == pytest.approx(0.836, abs=0.001)
    # Four times an epoch the underfit rule also judges trial 27 at 0.75 epoch, on a flat stretch
    # of its curve, and stops it: the replay keeps trial 12's 17.2 s, for 6 points more saved.
    assert four.best == pytest.approx(17.233, abs=0.001) and four.saved == pytest.approx(0.899, abs=0.001)
    assert four.outcomes["underfit"] == 10 and two.outcomes["underfit"] == 3
    assert in_orders(records(quarters), target, 20).kept == 4
    assert in_orders(records(quarters, 2), target, 20).kept == 15
