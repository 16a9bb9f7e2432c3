"""Pruners asked as of one event: they see only the view's trials, Optuna's too; and the private
members of Optuna this leans on are still there."""

import inspect

import optuna
from optuna.trial import TrialState, create_trial

from search.pruning.as_of import PRIVATE_HYPERBAND_API, prune_as_of
from search.study.view import StudyView


def _finished(values):
    trials = []
    for number, v in enumerate(values):
        t = create_trial(state=TrialState.COMPLETE, value=v, intermediate_values={1: v, 2: v})
        t.number = number
        trials.append(t)
    return trials


def _asking(study, value):
    trial = study.ask()
    trial.report(value, 1)
    trial.report(value, 2)
    return study._storage.get_trial(trial._trial_id)


def test_a_pruner_sees_only_the_views_trials():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    study = optuna.create_study(pruner=pruner)
    for t in _finished([0.1, 0.2, 0.3]):
        study.add_trial(t)
    frozen = _asking(study, 0.5)
    assert prune_as_of(pruner, StudyView(study, study.get_trials(states=(TrialState.COMPLETE,))), frozen)
    # Seeing only one finished trial (fewer than its startup trials), the same pruner lets it go on.
    assert not prune_as_of(pruner, StudyView(study, study.get_trials()[:1]), frozen)


def test_hyperband_is_asked_with_the_views_trials_of_its_bracket():
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=4, reduction_factor=3)
    study = optuna.create_study(pruner=pruner)
    for t in _finished([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]):
        study.add_trial(t)
    frozen = _asking(study, 0.9)
    seen = StudyView(study, study.get_trials(states=(TrialState.COMPLETE,)))
    assert prune_as_of(pruner, seen, frozen) in (True, False)  # asked without reading the storage itself
    assert prune_as_of(pruner, StudyView(study, []), frozen) is False  # nothing seen: nothing to compare with


def test_the_private_optuna_members_leaned_on_are_still_there():
    pruner = optuna.pruners.HyperbandPruner()
    for name in PRIVATE_HYPERBAND_API:
        assert hasattr(pruner, name), name
    assert list(inspect.signature(pruner._get_bracket_id).parameters) == ["study", "trial"]
    storage = optuna.storages.RDBStorage("sqlite:///:memory:", heartbeat_interval=1)
    assert callable(storage._get_stale_trial_ids) and callable(storage.record_heartbeat)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    assert optuna.Trial(study, trial._trial_id).number == trial.number
