"""Why a trial was pruned: the pruner's own decision, or a generic one for Optuna's pruners."""

import optuna

from search.pruning.decision import explain
from tests.search.pruning.test_saturation import _decide, _study


def test_explain_gives_the_pruners_own_decision_or_a_generic_one():
    study = _study()
    at, decision = _decide(study, [(3, 0.10), (6, 0.11)])
    number = study.trials[-1].number
    point = {"train_seconds": 3.0, "val_accuracy": 0.1, "epoch": 1.0}
    assert explain(study.pruner, number, point) == decision and decision.rule == "diverged"
    generic = explain(optuna.pruners.MedianPruner(), 7, point)
    assert generic.rule == "median" and "validation error 0.9000 at epoch 1 (3.0 s)" in generic.reason
    assert study.pruner.decision_for(999) is None
