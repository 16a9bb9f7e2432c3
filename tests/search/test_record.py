"""The trial and study records: what is written is what is read, under this module's keys."""

import optuna
from optuna.trial import TrialState

import search.record as rec
from lenet.train import RunSummary, TrainConfig
from search.record import StudyRecord, TrialRecord, TrialResult, TrialSetup, write_curve, write_failure


def _setup(baseline=False):
    return TrialSetup(config=TrainConfig(lr=0.02, seed=3), target=0.6, device="cpu", threads=2, data_checksum="abc",
                      versions={"torch": "x"}, baseline=baseline)  # fmt: skip


def test_a_trial_reads_back_what_it_wrote():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study()
    trial = study.ask()
    _setup(baseline=True).write(trial)
    curve = [{"train_seconds": 1.0, "val_accuracy": 0.5, "epoch": 0.5, "images": 100}]
    write_curve(trial, curve)
    summary = RunSummary(best_val_accuracy=0.61, final_val_accuracy=0.61, epochs=0.5, train_seconds=1.0,
                         wall_seconds=1.2, seconds_to_target=1.0, epochs_to_target=0.5, images_to_target=100)  # fmt: skip
    TrialResult.of(summary, "reached", "reached 0.61", clock_seconds=0.8, seconds_to_target=0.7).write(trial)
    study.tell(trial, 0.7)
    r = TrialRecord.of(study.trials[0])
    assert (r.clock_seconds, r.measured_seconds_to_target) == (0.8, 1.0)
    assert r.config == TrainConfig(lr=0.02, seed=3) and r.seed == 3 and r.target == 0.6 and r.baseline
    assert r.curve == curve and r.images == 100
    assert (r.value, r.seconds_to_target, r.epochs_to_target, r.images_to_target) == (0.7, 0.7, 0.5, 100)
    assert (r.outcome, r.reason, r.capped_at, r.best_val_accuracy) == ("reached", "reached 0.61", None, 0.61)
    # Every stored key is one of the module's constants.
    keys = {v for k, v in vars(rec).items() if k.isupper() and isinstance(v, str) and not k.startswith("STUDY_")}
    assert set(study.trials[0].user_attrs) <= keys


def test_a_failed_or_pruned_trial_has_no_value():
    study = optuna.create_study()
    trial = study.ask()
    write_failure(trial, "out_of_memory", "CUDA out of memory")
    study.tell(trial, state=TrialState.FAIL)
    r = TrialRecord.of(study.trials[0])
    assert r.value is None and r.config is None and r.curve == [] and r.outcome == "out_of_memory"
    assert not r.baseline and r.epochs == 0.0


def test_study_record_round_trip_and_foreign_studies():
    record = StudyRecord(target=0.62, target_source="given", space={"max_epochs": 3, "evals_per_epoch": 2},
                         device="cpu", threads=2, data_checksum="c", seed=1, created="t")  # fmt: skip
    attrs = record.items()
    assert rec.STUDY_BASELINE not in attrs  # none given: none stored
    assert StudyRecord.of(attrs) == record
    assert StudyRecord.of({}) is None
