"""Population studies (`--population K`): the trials of one batch size that an executor holds
train as one model, each still its own trial with its own curve, and the study is as exact as a
serial one: the same command makes the same study, and an interrupted one resumes to it."""

from __future__ import annotations

import dataclasses
import json
import shutil

import optuna
import pytest

import search.confirm.racer
from lenet.clock import StepClock
from lenet.data import load_dataset
from lenet.members import MemberRun, PopulationPool
from search.clock.pricing import time_to_target
from search.records.keys import STUDY_CONFIRMATION
from search.records.study import study_record
from search.records.trial import TrialRecord
from search.run.lane_trial import LaneTrial
from search.study.compare import differences, study_fields
from tests.search.cli_helpers import run_cli

POPULATION = ("--population", "3", "--trials", "10", "--max-epochs", "3")


def _study(storage: str) -> optuna.Study:
    return optuna.load_study(study_name="lenet5-cifar10", storage=storage)


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory) -> str:
    storage = f"sqlite:///{tmp_path_factory.mktemp('pop')}/pop.db"
    result = run_cli(*tiny.optimize_args(storage, *POPULATION))
    assert result.code == 0, result.err
    return storage


def test_a_population_study_has_a_lane_per_member_in_one_process_and_each_trial_its_own_curve(tiny, reference):
    study = _study(reference)
    record = study_record(study)
    assert (record.population, record.lanes, record.jobs) == (3, 3, 1)
    trials = [t for t in study.trials if t.state.is_finished()]
    assert len(trials) == 10 and {t.user_attrs["lane"] for t in trials} == {0, 1, 2}
    assert {t.params["batch_size"] for t in trials} == {32, 64}  # two populations, one per batch size
    # Each trial's stored curve is what its config trains as a lone member of a population as
    # wide: whoever shared its population, and whenever it joined.
    data = load_dataset(tiny.archive, "cpu", val_size=200)
    pool = PopulationPool(data, 3)
    for trial in trials:
        stored = TrialRecord.of(trial)
        run = pool.run(stored.config)
        alone = [run.advance() for _ in stored.curve]
        run.release()
        assert [p["val_accuracy"] for p in stored.curve] == [r.val_accuracy for r in alone], trial.number
        assert [p["train_loss"] for p in stored.curve] == [r.train_loss for r in alone], trial.number
    assert any(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def test_the_same_command_makes_the_same_population_study(tiny, tmp_path, reference):
    storage = f"sqlite:///{tmp_path}/again.db"
    result = run_cli(*tiny.optimize_args(storage, *POPULATION))
    assert result.code == 0, result.err
    assert differences(study_fields(_study(storage)), study_fields(_study(reference))) == []


def test_an_interrupted_population_study_resumes_to_the_same_study(tiny, tmp_path, reference, monkeypatch):
    real_end = LaneTrial._end
    struck: list[int] = []

    def end_interrupted(self, event, pruned):
        if self.number in (3, 6) and self.number not in struck:  # two members, interrupted as they end
            struck.append(self.number)
            raise KeyboardInterrupt
        real_end(self, event, pruned)

    monkeypatch.setattr(LaneTrial, "_end", end_interrupted)
    storage = f"sqlite:///{tmp_path}/resumed.db"
    codes = []
    for _ in range(4):
        result = run_cli(*tiny.optimize_args(storage, *POPULATION))
        codes.append(result.code)
        if result.code != 130:
            break
    assert codes == [130, 130, 0] and struck == [3, 6]
    assert differences(study_fields(_study(storage)), study_fields(_study(reference))) == []


def test_a_population_needs_the_calibrated_clock_and_keeps_its_width(tiny, tmp_path, reference):
    storage = f"sqlite:///{tmp_path}/m.db"
    measured = [a for a in tiny.optimize_args(storage, *POPULATION, "--clock", "measured")]
    at = measured.index("--clock-from")
    del measured[at : at + 2]
    result = run_cli(*measured)
    assert result.code == 2 and "--population" in result.err and "calibrated clock" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "m.db").exists() or not optuna.get_all_study_names(storage)
    before = len(_study(reference).trials)
    result = run_cli(*tiny.optimize_args(reference, "--population", "2", "--trials", "12"))
    assert result.code == 2 and "populations of 3, not 2" in result.err
    assert len(_study(reference).trials) == before


def test_a_population_studys_race_trains_each_candidates_seeds_together_as_members(
    tiny, tmp_path, reference, monkeypatch
):
    # A copy of the study, its stored race cleared, raced again on 3 seeds.
    shutil.copy(reference.removeprefix("sqlite:///"), tmp_path / "race.db")
    study = _study(f"sqlite:///{tmp_path}/race.db")
    study.set_user_attr(STUDY_CONFIRMATION, None)
    seated: dict[tuple[int, int], int] = {}  # (trial, seed) -> the population it was seated in

    class Seating(search.confirm.racer.PopulationRuns):
        def run(self, key, config):
            run = super().run(key, config)
            assert isinstance(run, MemberRun) and run.population is not None  # seated at its start
            seated[key] = id(run.population)
            return run

    monkeypatch.setattr(search.confirm.racer, "PopulationRuns", Seating)
    data = load_dataset(tiny.archive, "cpu", val_size=200)
    race = search.confirm.racer.confirm(study, data, top=2, n_seeds=3, threads=1)
    assert race is not None and race.done and len(race.candidates) == 2
    incumbent = race.candidates[0]
    # The incumbent's three seeds started together: one population, three members.
    assert len({seated[(incumbent, s)] for s in race.seeds}) == 1
    # Each exact run's time is what its schedule on that seed trains as a lone member of a
    # population as wide, the arithmetic of the study's own trials.
    clock = StepClock.from_dict(json.loads(tiny.clock.read_text()))
    exact = [r for r in race.runs if r.exact and r.seconds is not None]
    assert exact
    for seed_run in exact:
        config = dataclasses.replace(TrialRecord.of(study.trials[seed_run.trial]).config, seed=seed_run.seed)
        run = PopulationPool(data, 3).run(config)
        while (record := run.advance()) is not None and record.val_accuracy < 0.6:
            pass
        assert time_to_target(run.history, 0.6, config, clock).clock_seconds == seed_run.seconds
