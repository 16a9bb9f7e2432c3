"""The per-trial line that `optimize` prints."""

import optuna

from search.records.trial import BEST_VAL_ACCURACY, EPOCHS, REASON, TRAIN_SECONDS
from search.views.progress import format_trial_line


def test_trial_line_rounds_fractional_epochs_and_says_why():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study()
    trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 0.3, log=True)})
    # At batch 32 an epoch has 1407 steps, so the mid-epoch evaluation falls at 704/1407 of one.
    for key, value in {
        EPOCHS: 6 + 704 / 1407,
        TRAIN_SECONDS: 27.84,
        BEST_VAL_ACCURACY: 0.6018,
        REASON: "out of reach: ...",
    }.items():
        trial.set_user_attr(key, value)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    line = format_trial_line(study.trials[0])
    assert "| 6.5 epochs, 27.8 s, best val 0.6018 | out of reach: ..." in line
    assert line.startswith("trial   0 pruned ")
