"""The confirmation race on fresh seeds, on tiny synthetic data: who runs, where runs stop,
who drops, what is stored and resumed, and what export and retrain say of it."""

import json

import optuna
import pytest

from search.confirm import SEED_OFFSET, Confirmation, ConfirmRun, candidates, confirmation_of
from search.record import TrialRecord
from tests.search.cli_helpers import run_cli


def _study(storage, name="lenet5-cifar10"):
    return optuna.load_study(study_name=name, storage=storage)


@pytest.fixture(scope="module")
def confirmed(tiny, tmp_path_factory):
    storage = f"sqlite:///{tmp_path_factory.mktemp('confirm')}/s.db"
    result = run_cli(*tiny.optimize_args(storage, "--trials", "8", "--max-epochs", "3", "--confirm", "3",
                                         "--confirm-seeds", "3"))  # fmt: skip
    assert result.code == 0, result.err
    return storage, result


def test_the_race_runs_the_incumbent_on_every_seed_and_caps_challengers(confirmed):
    storage, result = confirmed
    study = _study(storage)
    race = confirmation_of(study)
    assert race.done and race.seeds == [SEED_OFFSET, SEED_OFFSET + 1, SEED_OFFSET + 2]
    assert race.candidates == candidates(study, 3) and race.candidates[0] == study.best_trial.number
    assert {r.seed for r in race.runs_of(race.incumbent)} == set(race.seeds)
    assert all(r.seconds is not None or not r.stopped_at_cap for r in race.runs_of(race.incumbent))
    for c in race.candidates:
        for r in race.runs_of(c):
            if r.trial != race.incumbent and r.cap is not None:
                # A challenger's run is capped by the incumbent's time on the same seed.
                assert r.cap == pytest.approx(race.run_of(race.candidates[0], r.seed).lower_bound) or r.trial in race.dropped
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
    race.runs = [ConfirmRun(5, s, t, None, False, t, 3.0) for s, t in ((1, 10.0), (2, 12.0), (3, 11.0))]
    race.runs += [ConfirmRun(9, 1, None, 10.0, True, None, 2.0), ConfirmRun(9, 2, None, 12.0, True, None, 2.0)]
    assert race.median(5) == 11.0 and race.median(9) == 12.0 - 1.0  # lower bounds 10, 12: median 11
    assert race.summary(9).times_text() == ">10.0, >12.0"
    assert not race.summary(9).exact
    assert Confirmation.from_dict(json.loads(json.dumps(race.to_dict()))) == race


def test_the_race_is_stored_and_a_rerun_resumes_it_without_training(confirmed, tiny, monkeypatch):
    storage, _ = confirmed
    before = confirmation_of(_study(storage))
    import search.confirm

    def no_training(*args, **kwargs):
        raise AssertionError("a finished race must not train again")

    monkeypatch.setattr(search.confirm, "train", no_training)
    result = run_cli(*tiny.optimize_args(storage, "--trials", "8", "--max-epochs", "3"))
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
    result = run_cli("train", "--config", out, "--data", tiny.archive, "--val-size", "200", "--stop-at-target",
                     "--seed", str(race.seeds[0]), "--quiet", "--out", tmp_path / "run")  # fmt: skip
    assert result.code == 0, result.err
    # The same schedule on the first confirmation seed: exactly its time in the study's clock.
    assert f"in the study's clock: {race.run_of(race.incumbent, race.seeds[0]).seconds:.1f} s" in result.out
    assert "this retrain is within that range" in result.out
    show = run_cli("studies", "show", "lenet5-cifar10", "--storage", storage)
    assert f"winner trial {race.incumbent:>3}: median {race.median(race.incumbent):.1f} s" in show.out


def test_confirm_zero_turns_it_off(tiny, tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    assert run_cli(*tiny.optimize_args(storage, "--trials", "3", "--confirm", "0")).code == 0
    assert confirmation_of(_study(storage)) is None
    assert all(TrialRecord.of(t).config.seed == 0 for t in _study(storage).trials)
