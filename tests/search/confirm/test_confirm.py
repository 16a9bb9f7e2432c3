"""The confirmation race on fresh seeds, on tiny synthetic data: who runs, where runs stop,
who drops, what is stored and resumed, and what export and retrain say of it."""

import json
import statistics

import optuna
import pytest

from search.confirm.race import SEED_OFFSET, Confirmation, SeedRun, confirmation_of
from search.confirm.racer import _Racer, candidates
from search.records.trial import TrialRecord
from search.views.confirmation import confirm_run_line, times_text
from tests.search.cli_helpers import run_cli


def _study(storage, name="lenet5-cifar10"):
    return optuna.load_study(study_name=name, storage=storage)


@pytest.fixture(scope="module")
def confirmed(tiny, tmp_path_factory):
    storage = f"sqlite:///{tmp_path_factory.mktemp('confirm')}/s.db"
    result = run_cli(
        *tiny.optimize_args(storage, "--trials", "8", "--max-epochs", "3", "--confirm", "3", "--confirm-seeds", "3")
    )
    assert result.code == 0, result.err
    return storage, result


def test_the_race_runs_the_incumbent_on_every_seed_and_caps_challengers(confirmed):
    storage, result = confirmed
    study = _study(storage)
    race = confirmation_of(study)
    assert race.done and race.seeds == [SEED_OFFSET, SEED_OFFSET + 1, SEED_OFFSET + 2]
    assert race.candidates == candidates(study, 3) and race.candidates[0] == study.best_trial.number
    assert {r.seed for r in race.runs_of(race.incumbent)} == set(race.seeds)
    winner = race.summary(race.incumbent)
    assert winner.median_exact
    # Seeds stopped short of the target (capped, or left in the lockstep) lie above the median.
    assert all(r.exact or r.lower_bound >= winner.median for r in race.runs_of(race.incumbent))
    for c in race.candidates:
        for r in race.runs_of(c):
            if r.trial != race.candidates[0] and r.cap is not None and not r.bounded:
                # A challenger's run is capped by the incumbent's time on the same seed.
                assert (
                    r.cap == pytest.approx(race.run_of(race.candidates[0], r.seed).lower_bound)
                    or r.trial in race.dropped
                )
            if r.stopped_at_cap:
                assert r.seconds is None and r.lower_bound == r.cap
    # Ranked by median; the winner first.
    ranking = race.ranking()
    assert ranking[0].trial == race.incumbent
    assert "confirmed on fresh seeds 1000-1002" in result.out and f"winner trial {race.incumbent:>3}" in result.out
    # --trials counts search trials only: the confirmation added none.
    assert len(study.trials) == 8


def test_a_challenger_drops_once_it_cannot_win_on_the_median():
    race = Confirmation(seeds=[1, 2, 3], candidates=[5, 9], incumbent=5)
    race.runs = [SeedRun(5, s, t, None, False, t, 3.0) for s, t in ((1, 10.0), (2, 12.0), (3, 11.0))]
    race.runs += [SeedRun(9, 1, None, 10.0, True, None, 2.0), SeedRun(9, 2, None, 12.0, True, None, 2.0)]
    assert race.median(5) == 11.0 and race.median(9) == 12.0 - 1.0  # lower bounds 10, 12: median 11
    assert times_text(race.summary(9)) == ">10.0, >12.0"
    assert not race.summary(9).exact
    assert Confirmation.from_dict(json.loads(json.dumps(race.to_dict()))) == race


def test_a_median_is_decided_when_every_capped_run_lies_above_it():
    race = Confirmation(seeds=[1, 2, 3], candidates=[9])
    race.runs = [
        SeedRun(9, 1, 8.0, 10.0, False, 8.0, 2.0),
        SeedRun(9, 2, None, 12.0, True, None, 2.0),
        SeedRun(9, 3, 9.0, 11.0, False, 9.0, 2.0),
    ]
    assert race.median(9) == 9.0 and race.median_decided(9)
    summary = race.summary(9)
    assert summary.median_exact and not summary.exact and summary.high == 12.0  # the top is only a lower bound
    race.runs[0] = SeedRun(9, 1, None, 7.0, True, None, 2.0)  # now a capped run sits below the others
    assert race.median(9) == 9.0 and not race.median_decided(9)  # bounds 7, 12, 9: median at least 9


class _ScriptedRacer(_Racer):
    """The race's rules on scripted times to target (trial -> seed -> seconds), no training."""

    def __init__(self, race: Confirmation, times: dict[int, dict[int, float]]) -> None:
        study = optuna.create_study()
        super().__init__(study, race, None, None, 0.6, None, None)
        self.times, self.trained = times, []

    def _run_incumbent(self, trial):  # one seed after the other (the lockstep needs real runs)
        for seed in self.race.seeds:
            self._ensure(trial, seed, cap=None)

    def _train(self, trial, seed, cap):
        self.trained.append((trial, seed, cap))
        t = self.times[trial][seed]
        if cap is not None and t > cap:  # stopped at the incumbent's time on this seed
            return SeedRun(trial, seed, None, cap, True, None, 1.0)
        return SeedRun(trial, seed, t, cap, False, t, 1.0)


INCUMBENT = {1: 10.0, 2: 12.0, 3: 11.0, 4: 13.0}  # median 11.5


def test_a_challenger_whose_median_is_decided_takes_over_without_running_its_capped_seeds_again():
    race = Confirmation(seeds=[1, 2, 3, 4], candidates=[5, 9])
    racer = _ScriptedRacer(race, {5: INCUMBENT, 9: {1: 8.0, 2: 15.0, 3: 9.0, 4: 9.5}})
    racer.run()
    assert race.incumbent == 9 and race.dropped[5] == "beaten on the median by trial 9"
    assert len(racer.trained) == 8  # four seeds each: seed 2's capped run was not repeated
    assert race.median(9) == 9.25 and race.summary(9).median_exact and not race.summary(9).exact
    assert times_text(race.summary(9)) == "8.0, >12.0, 9.0, 9.5"


def test_a_challenger_runs_its_capped_seeds_again_only_until_its_median_is_decided():
    race = Confirmation(seeds=[1, 2, 3, 4], candidates=[5, 9])
    racer = _ScriptedRacer(race, {5: INCUMBENT, 9: {1: 10.5, 2: 9.0, 3: 11.2, 4: 9.5}})
    racer.run()
    # Capped at 10 and 11 on seeds 1 and 3, its median was only "at least 9.75". Seed 1, the
    # lower bound, runs again, capped at 2 x 11.5 - 9.0 = 14: its 10.5 puts the median at 10.0
    # even if seed 3 never reached the target, so seed 3 is not run again.
    assert racer.trained[-1] == (9, 1, 14.0) and (9, 3, None) not in racer.trained
    assert race.incumbent == 9 and race.median(9) == 10.0 and race.summary(9).median_exact
    assert times_text(race.summary(9)) == "10.5, 9.0, >11.0, 9.5"


def test_a_rerun_stops_where_its_time_no_longer_matters():
    # Seed 1 never reaches the target: run again to the end it would train the whole budget.
    race = Confirmation(seeds=[1, 2, 3, 4], candidates=[5, 9])
    racer = _ScriptedRacer(race, {5: INCUMBENT, 9: {1: 100.0, 2: 9.0, 3: 11.5, 4: 9.5}})
    racer.run()
    assert racer.trained[-2:] == [(9, 1, 14.0), (9, 3, 14.0)]  # capped at 14 s, not run to 100 s
    assert race.incumbent == 9 and race.median(9) == 10.5  # 9.0, 9.5, 11.5 and more than 14
    assert race.summary(9).median_exact and times_text(race.summary(9)) == ">14.0, 9.0, 11.5, 9.5"


def test_a_new_incumbents_capped_seeds_run_on_until_its_median_is_exact():
    race = Confirmation(seeds=[1, 2, 3, 4], candidates=[5, 9])
    racer = _ScriptedRacer(race, {5: INCUMBENT, 9: {1: 9.0, 2: 8.0, 3: 13.0, 4: 12.5}})
    racer.run()
    # Bounds 9, 8, more than 11 (capped on seed 3), 12.5: it wins whatever seed 3's time (at
    # most 10.75 against 11.5), but its median is 10 to 10.75. Seed 3 runs on, up to 12.5 (the
    # upper middle of the others): past it, the median is 10.75 whatever its time.
    assert race.incumbent == 9 and racer.trained[-1] == (9, 3, 12.5)
    assert race.median(9) == 10.75 and race.summary(9).median_exact
    assert times_text(race.summary(9)) == "9.0, 8.0, >12.5, 12.5"


def test_a_challenger_whose_reruns_stop_at_their_bound_drops():
    race = Confirmation(seeds=[1, 2, 3, 4], candidates=[5, 9])
    racer = _ScriptedRacer(race, {5: INCUMBENT, 9: {1: 100.0, 2: 9.0, 3: 100.0, 4: 9.5}})
    racer.run()
    assert racer.trained[-2:] == [(9, 1, 14.0), (9, 3, 14.0)]
    assert race.incumbent == 5  # 9.0, 9.5, and two of more than 14 s: at least 11.75 against 11.5
    assert race.dropped[9] == "no better on the median once its capped seeds ran again (at least 11.8 s against 11.5 s)"
    assert all(r.bounded for r in race.runs_of(9) if r.cap == 14.0)
    assert confirm_run_line(race.run_of(9, 1)) == (
        "confirm trial   9 seed 1: stopped at 14.0 s: a longer time would change neither ranking nor median"
    )
    assert confirm_run_line(race.run_of(5, 1)) == "confirm trial   5 seed 1: 10.0 s to target (measured 10.0 s)"
    assert confirm_run_line(race.run_of(9, 2)) == "confirm trial   9 seed 2: 9.0 s to target (measured 9.0 s)"
    first_pass = SeedRun(9, 1, None, 10.0, True, None, 1.0)
    assert (
        confirm_run_line(first_pass)
        == "confirm trial   9 seed 1: stopped at 10.0 s, where the incumbent stopped on this seed"
    )


def test_an_odd_number_of_seeds_caps_a_rerun_at_the_incumbents_median():
    race = Confirmation(seeds=[1, 2, 3], candidates=[5, 9])
    racer = _ScriptedRacer(race, {5: {1: 10.0, 2: 12.0, 3: 11.0}, 9: {1: 30.0, 2: 9.0, 3: 11.5}})
    racer.run()
    # Bounds 10 (capped), 9.0, 11 (capped): median at least 10 against 11; seed 1 runs again to 11 s.
    assert racer.trained[3:] == [(9, 1, 10.0), (9, 2, 12.0), (9, 3, 11.0), (9, 1, 11.0)]
    assert race.incumbent == 5 and race.median(9) == 11.0


def test_a_challenger_that_cannot_win_stops_early():
    race = Confirmation(seeds=[1, 2, 3], candidates=[5, 9])
    racer = _ScriptedRacer(race, {5: {1: 11.0, 2: 12.0, 3: 10.0}, 9: {1: 20.0, 2: 20.0, 3: 1.0}})
    racer.run()
    assert race.incumbent == 5 and race.dropped[9].startswith("cannot win on the median after 2 of 3 seeds")
    # Stopped at 11 and 12 against a median of 11: even an instant third seed cannot win.
    assert [(t, s) for t, s, _ in racer.trained if t == 9] == [(9, 1), (9, 2)]


def test_the_race_is_stored_and_a_rerun_resumes_it_without_training(confirmed, tiny, monkeypatch):
    storage, _ = confirmed
    before = confirmation_of(_study(storage))
    import search.confirm.racer

    def no_training(*args, **kwargs):
        raise AssertionError("a finished race must not train again")

    monkeypatch.setattr(search.confirm.racer, "TrainingRun", no_training)
    result = run_cli(
        *tiny.optimize_args(storage, "--trials", "8", "--max-epochs", "3", "--confirm", "3", "--confirm-seeds", "3")
    )  # the same command
    assert result.code == 0, result.err
    assert confirmation_of(_study(storage)) == before


def test_export_gives_the_confirmed_winner_and_a_retrain_says_where_it_falls(confirmed, tiny, tmp_path):
    storage, _ = confirmed
    race = confirmation_of(_study(storage))
    out = tmp_path / "best.json"
    assert run_cli("export", "--storage", storage, "-o", out).code == 0
    doc = json.loads(out.read_text())
    assert doc["study"]["trial"] == race.incumbent
    c = doc["confirmation"]
    assert c["winner"] and c["seeds"] == race.seeds and c["median"] == pytest.approx(race.median(race.incumbent))
    seed = next(r.seed for r in race.runs_of(race.incumbent) if r.exact)
    result = run_cli(
        *tiny.retrain_args(out), "--stop-at-target", "--seed", str(seed), "--quiet", "--out", tmp_path / "run"
    )
    assert result.code == 0, result.err
    # The same schedule on the first confirmation seed: exactly its time in the study's clock.
    assert f"in the study's clock: {race.run_of(race.incumbent, seed).seconds:.1f} s" in result.out
    assert "this retrain is within that range" in result.out
    show = run_cli("studies", "show", "lenet5-cifar10", "--storage", storage)
    assert f"winner trial {race.incumbent:>3}: median {race.median(race.incumbent):.1f} s" in show.out


def test_confirm_zero_turns_it_off(tiny, tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    assert run_cli(*tiny.optimize_args(storage, "--trials", "3", "--confirm", "0")).code == 0
    assert confirmation_of(_study(storage)) is None
    assert all(TrialRecord.of(t).config.seed == 0 for t in _study(storage).trials)


def test_a_seed_that_never_reached_the_target_reads_not_reached_and_exports_as_null():
    from search.retrain.export import confirmed_times
    from search.views.confirmation import confirmation_lines, range_text

    race = Confirmation(seeds=[1, 2, 3, 4], candidates=[5, 9], incumbent=5, done=True)
    race.runs = [SeedRun(5, s, t, None, False, t, 3.0) for s, t in ((1, 13.2), (2, 22.8), (3, 17.7), (4, 14.3))]
    race.runs += [SeedRun(9, s, t, None, False, t, 3.0) for s, t in ((1, 22.4), (2, 16.1), (3, 16.1))]
    race.runs += [SeedRun(9, 4, None, None, False, None, 15.0)]  # its epoch budget ran out
    race.dropped[9] = "no better on the median once run to the end"
    lines = "\n".join(confirmation_lines(race))
    assert "trial   9: median 19.2 s, range 16.1 s to not reached (22.4, 16.1, 16.1, not reached)" in lines
    assert "inf" not in lines
    assert range_text(None, None, True) == "range not reached to not reached"
    assert range_text(13.2, 14.4, False) == "range 13.2 s to more than 14.4 s"

    exported = confirmed_times(race, 9).to_dict()
    json.dumps(exported, allow_nan=False)  # strict JSON: no Infinity
    assert exported["high"] is None and exported["at_least"][-1] is None and exported["median"] == pytest.approx(19.25)


def test_the_incumbent_runs_in_lockstep_until_its_median_is_exact(confirmed, tiny):
    from lenet.clock import StepClock
    from lenet.data import load_dataset

    storage, _ = confirmed
    study = _study(storage)
    data = load_dataset(tiny.archive, "cpu", val_size=200, cache_dir=tiny.archive.parent / "cache")
    clock = StepClock.from_dict(json.loads(tiny.clock.read_text()))  # exact seconds: runs compare exactly
    trial, seeds = study.best_trial.number, [7, 8, 9, 10]
    full = _Racer(study, Confirmation(seeds, [trial]), data, clock, 0.6, 1, None)
    times = {s: full._train(trial, s, cap=None).lower_bound for s in seeds}  # every seed to the end
    race = Confirmation(seeds, [trial])
    racer = _Racer(study, race, data, clock, 0.6, 1, None)
    racer._save = lambda: None  # leave the module's study as the race stored it
    racer._run_incumbent(trial)
    ordered = sorted(times.values())
    assert race.median(trial) == statistics.median(ordered) and race.median_decided(trial)
    for run in race.runs_of(trial):
        if run.exact:
            assert run.lower_bound == times[run.seed]
        else:  # left in the lockstep, above the middle: no faster than the upper middle time
            assert run.bounded and (trial, run.seed) in racer.suspended
            assert times[run.seed] >= ordered[2] and run.lower_bound <= times[run.seed]


def test_a_capped_run_taken_up_again_continues_where_it_stopped(confirmed, tiny, monkeypatch):
    import search.confirm.racer
    from lenet.data import load_dataset

    storage, _ = confirmed
    study = _study(storage)
    race = confirmation_of(study)
    data = load_dataset(tiny.archive, "cpu", val_size=200, cache_dir=tiny.archive.parent / "cache")
    trial, seed = race.incumbent, next(r.seed for r in race.runs_of(race.incumbent) if r.exact)
    fresh = _Racer(study, race, data, None, 0.6, 1, None)._train(trial, seed, cap=None)  # measured clock
    assert fresh.seconds is not None and fresh.epochs > 0.5

    started = []

    class CountingRun(search.confirm.racer.TrainingRun):
        def __init__(self, *args, **kwargs):
            started.append(args[0].seed)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(search.confirm.racer, "TrainingRun", CountingRun)
    racer = _Racer(study, race, data, None, 0.6, 1, None)
    first = racer._train(trial, seed, cap=1e-9)  # stopped at its first evaluation
    assert first.stopped_at_cap and first.seconds is None and first.epochs == pytest.approx(0.5, abs=0.05)
    assert (trial, seed) in racer.suspended
    again = racer._train(trial, seed, cap=None)
    assert started == [seed]  # one run, continued: nothing trained twice
    assert (trial, seed) not in racer.suspended and not again.stopped_at_cap
    assert again.epochs == fresh.epochs  # the same curve as a run never stopped
