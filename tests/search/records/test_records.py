"""The trial and study records: what is written is what is read, under the keys module's keys."""

import optuna
from optuna.trial import TrialState

from lenet.config import TrainConfig
from search.records import keys
from search.records.study import StudyRecord
from search.records.trial import TrialRecord, TrialResult, TrialSetup, write_curve, write_failure


def _setup(baseline=False):
    return TrialSetup(
        config=TrainConfig(lr=0.02, seed=3),
        target=0.6,
        device="cpu",
        threads=2,
        data_checksum="abc",
        versions={"torch": "x"},
        baseline=baseline,
    )


def test_a_trial_reads_back_what_it_wrote():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study()
    trial = study.ask()
    _setup(baseline=True).write(trial)
    curve = [{"train_seconds": 1.0, "clock_seconds": 0.8, "val_accuracy": 0.5, "epoch": 0.5, "images": 100}]
    write_curve(trial, curve)
    TrialResult(
        best_val_accuracy=0.61,
        epochs=0.5,
        measured_seconds=1.0,
        clock_seconds=0.8,
        clock_seconds_to_target=0.7,
        measured_seconds_to_target=1.0,
        epochs_to_target=0.5,
        images_to_target=100,
        outcome="reached",
        reason="reached 0.61",
    ).write(trial)
    study.tell(trial, 0.7)
    r = TrialRecord.of(study.trials[0])
    assert (r.clock_seconds, r.measured_seconds, r.measured_seconds_to_target) == (0.8, 1.0, 1.0)
    assert r.config == TrainConfig(lr=0.02, seed=3) and r.seed == 3 and r.target == 0.6 and r.baseline
    assert r.curve == curve and r.images == 100
    assert (r.value, r.clock_seconds_to_target, r.epochs_to_target, r.images_to_target) == (0.7, 0.7, 0.5, 100)
    assert (r.outcome, r.reason, r.capped_at, r.best_val_accuracy) == ("reached", "reached 0.61", None, 0.61)
    # Every stored key is one of the keys module's constants.
    constants = {v for k, v in vars(keys).items() if k.isupper() and isinstance(v, str)}
    assert set(study.trials[0].user_attrs) <= constants


def test_a_failed_or_pruned_trial_has_no_value():
    study = optuna.create_study()
    trial = study.ask()
    write_failure(trial, "out_of_memory", "CUDA out of memory")
    study.tell(trial, state=TrialState.FAIL)
    r = TrialRecord.of(study.trials[0])
    assert r.value is None and r.config is None and r.curve == [] and r.outcome == "out_of_memory"
    assert not r.baseline and r.epochs == 0.0


def test_study_record_round_trip_and_foreign_studies():
    record = StudyRecord(
        target=0.62,
        target_source="given",
        space={"max_epochs": 3, "evals_per_epoch": 2},
        device="cpu",
        threads=2,
        data_checksum="c",
        seed=1,
        created="t",
    )
    attrs = record.items()
    assert keys.STUDY_BASELINE not in attrs  # none given: none stored
    assert attrs[keys.STUDY_SCHEMA] == 2
    assert StudyRecord.of(attrs) == record
    assert StudyRecord.of({}) is None
    constants = {v for k, v in vars(keys).items() if k.startswith("STUDY_")}
    assert set(attrs) <= constants
