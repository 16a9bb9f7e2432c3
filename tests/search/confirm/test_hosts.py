"""The confirmation race with several hosts on one study: one host races it (the one whose claim
went in), another waits for the stored race and reports it; a claim whose owner died or stopped
is taken over by claiming the next generation, and the race goes on where it was stored; an
owner that lost its claim stops writing."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import optuna
import pytest

import search.confirm.lease
import search.confirm.racer
from lenet.data import load_dataset
from search.confirm.lease import Lease, LostClaim
from search.confirm.race import Confirmation, confirmation_of
from search.confirm.racer import confirm
from search.records.keys import (
    CLAIM_BEAT,
    CLAIM_GENERATION,
    CLAIM_OWNER,
    CLAIM_RELEASED,
    STUDY_CONFIRMATION,
    STUDY_CONFIRMATION_CLAIM,
)
from search.records.trial import TrialRecord
from search.study import claims
from search.study.compare import MEASURED_RUN_FIELDS, differences, study_fields
from search.study.storage import close_storage, make_storage
from search.views.confirmation import confirmation_lines
from tests.search.cli_helpers import run_cli

ROOT = Path(__file__).resolve().parents[3]
NAME = "lenet5-cifar10"
RACE = dict(top=2, n_seeds=3, threads=1)
OTHER = "other-host:4242:0badc0de"  # a claim owner that is not this process


# -- in one process: a study searched, its race run by hand -------------------------------------


@pytest.fixture(scope="module")
def searched(tiny, tmp_path_factory) -> Path:
    """A 6-trial study, searched and not confirmed: each test races a copy of it."""
    path = tmp_path_factory.mktemp("searched") / "s.db"
    result = run_cli(*tiny.optimize_args(f"sqlite:///{path}", "--trials", "6", "--max-epochs", "3", "--confirm", "0"))
    assert result.code == 0, result.err
    return path


@pytest.fixture(scope="module")
def data(tiny):
    return load_dataset(tiny.archive, "cpu", val_size=200, cache_dir=tiny.archive.parent / "cache")


def _copy(searched: Path, to: Path) -> str:
    with sqlite3.connect(searched) as src, sqlite3.connect(to) as dst:
        src.backup(dst)
    return f"sqlite:///{to}"


class Host:
    """A study opened on its own storage, as another host opens it."""

    def __init__(self, url: str) -> None:
        self.storage = make_storage(url)
        self.study = optuna.load_study(study_name=NAME, storage=self.storage)

    def close(self) -> None:
        close_storage(self.storage)


@pytest.fixture
def host(searched, tmp_path):
    url = _copy(searched, tmp_path / "s.db")
    opened = [Host(url)]
    yield opened[0]
    for h in opened:
        h.close()


@pytest.fixture(scope="module")
def stored_race(searched, data, tmp_path_factory) -> dict:
    """The race one host runs alone, uninterrupted, as stored."""
    h = Host(_copy(searched, tmp_path_factory.mktemp("ref") / "s.db"))
    try:
        race = confirm(h.study, data, **RACE)
        assert race is not None and race.done and race.joined is None
        return h.study.user_attrs[STUDY_CONFIRMATION]
    finally:
        h.close()


def _fields(raw: dict) -> dict:
    """A stored race as two runs of it must agree on (study_fields': without the measured seconds)."""
    d = Confirmation.from_dict(raw).to_dict()
    d["runs"] = [
        {k: v for k, v in r.items() if k not in MEASURED_RUN_FIELDS}
        for r in sorted(d["runs"], key=lambda r: (r["trial"], r["seed"]))
    ]
    return d


@pytest.fixture(scope="module")
def reference(stored_race) -> dict:
    return _fields(stored_race)


def _stored(study: optuna.Study) -> dict:
    return study_fields(study)["confirmation"]


def _subject(study: optuna.Study) -> str:
    return claims.confirmation_subject(study._study_id)


@pytest.fixture(autouse=True)
def _bounded_waits(monkeypatch):
    """A host that waits for another's race gives up (fails the test) after 120 s of waiting."""
    waited = [0.0]

    class Clock:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            waited[0] += seconds
            assert waited[0] < 120, "waited 120 s for another host's race"
            time.sleep(seconds)

    monkeypatch.setattr(search.confirm.racer, "time", Clock)


def _interrupt_after(n: int):
    """An on_run that stops the race (as Ctrl-C does) once `n` runs are stored."""
    seen = []

    def on_run(run):
        seen.append(run)
        if len(seen) == n:
            raise KeyboardInterrupt

    return on_run


def _trainings(monkeypatch) -> list:
    """The configs (seed included) of every training run the racer starts from now on."""
    started = []

    class Counted(search.confirm.racer.TrainingRun):
        def __init__(self, config, *args, **kwargs):
            started.append(config)
            super().__init__(config, *args, **kwargs)

    monkeypatch.setattr(search.confirm.racer, "TrainingRun", Counted)
    return started


def _no_training(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("this host must not train the race: another runs it")

    monkeypatch.setattr(search.confirm.racer, "TrainingRun", refuse)


def _write_beat(study: optuna.Study, generation: int, owner: str, age: float, released: bool = False) -> None:
    beat = Lease.of(study)._now() - timedelta(seconds=age)
    study.set_user_attr(
        STUDY_CONFIRMATION_CLAIM,
        {CLAIM_GENERATION: generation, CLAIM_OWNER: owner, CLAIM_BEAT: beat.isoformat(), CLAIM_RELEASED: released},
    )


def test_one_host_claims_races_and_releases(host, data, reference):
    race = confirm(host.study, data, **RACE)
    assert race.done and race.joined is None and _stored(host.study) == reference
    assert claims.latest(host.storage, _subject(host.study)) == (1, claims.OWNER)
    beat = host.study.user_attrs[STUDY_CONFIRMATION_CLAIM]
    assert beat[CLAIM_GENERATION] == 1 and beat[CLAIM_OWNER] == claims.OWNER and beat[CLAIM_RELEASED]
    # The same call again: the stored race, done, is returned as it is; nothing claimed.
    assert confirm(host.study, data, **RACE) == race
    assert claims.latest(host.storage, _subject(host.study)) == (1, claims.OWNER)


def test_a_dead_claimers_race_is_taken_over_and_continues_where_it_was_stored(host, data, reference, monkeypatch):
    # A race stored partway: two runs in, then stopped.
    with pytest.raises(KeyboardInterrupt):
        confirm(host.study, data, on_run=_interrupt_after(2), **RACE)
    partway = confirmation_of(host.study)
    assert len(partway.runs) == 2 and not partway.done
    # Another host claimed it next and was killed: its heartbeat is older than the grace period.
    assert claims.claim(host.storage, _subject(host.study), 2, owner=OTHER)
    _write_beat(host.study, 2, OTHER, age=search.confirm.lease.GRACE_SECONDS + 5)
    assert Lease.of(host.study).holder() is None  # free: its owner is gone
    started = _trainings(monkeypatch)
    race = confirm(host.study, data, **RACE)
    assert claims.latest(host.storage, _subject(host.study)) == (3, claims.OWNER)  # the next generation
    assert race.done and race.joined is None and _stored(host.study) == reference
    # It went on from the stored race: no run stored exact was trained again.
    configs = {t.number: TrialRecord.of(t).config for t in host.study.get_trials(deepcopy=False)}
    exact = [replace(configs[r.trial], seed=r.seed) for r in partway.runs if r.exact]
    assert exact and started and not [c for c in started if c in exact]


def test_a_released_claim_is_taken_over_at_once(host, data, reference, monkeypatch):
    assert claims.claim(host.storage, _subject(host.study), 1, owner=OTHER)
    _write_beat(host.study, 1, OTHER, age=0, released=True)  # its owner was interrupted: it let go
    monkeypatch.setattr(search.confirm.lease, "GRACE_SECONDS", 3600)
    assert Lease.of(host.study).holder() is None  # free now, not in an hour
    race = confirm(host.study, data, **RACE)
    assert race.done and race.joined is None and _stored(host.study) == reference
    assert claims.latest(host.storage, _subject(host.study)) == (2, claims.OWNER)


def test_a_claim_never_beaten_is_taken_over_after_the_grace_period(host, data, reference, monkeypatch):
    assert claims.claim(host.storage, _subject(host.study), 1, owner=OTHER)  # died before its first beat
    monkeypatch.setattr(search.confirm.lease, "GRACE_SECONDS", 1.5)
    started = time.monotonic()
    race = confirm(host.study, data, **RACE)
    assert time.monotonic() - started >= 1.5
    assert race.done and race.joined is None and _stored(host.study) == reference
    assert claims.latest(host.storage, _subject(host.study)) == (2, claims.OWNER)


def test_a_host_that_finds_the_race_claimed_waits_shows_it_and_reports_it(host, data, stored_race, monkeypatch):
    other = Host(host.storage.url)
    try:
        lease = Lease(other.study, other.storage, owner=OTHER)
        assert lease.holder() is None and lease.claim()  # the other host races, beating
        other.study.set_user_attr(STUDY_CONFIRMATION, {**stored_race, "done": False, "runs": stored_race["runs"][:2]})

        def finish() -> None:
            time.sleep(2.0)  # the waiting host shows the first two runs meanwhile
            other.study.set_user_attr(STUDY_CONFIRMATION, stored_race)
            lease.release()

        finisher = threading.Thread(target=finish)
        finisher.start()
        _no_training(monkeypatch)
        shown = []
        race = confirm(host.study, data, on_run=shown.append, **RACE)
        finisher.join(timeout=30)
        assert race.done and race.joined == OTHER and _stored(host.study) == _fields(stored_race)
        # It showed what was there while it waited, then what came: each stored run once.
        assert [(r.trial, r.seed) for r in shown[:2]] == [(r["trial"], r["seed"]) for r in stored_race["runs"][:2]]
        assert sorted((r.trial, r.seed) for r in shown) == sorted((r["trial"], r["seed"]) for r in stored_race["runs"])
        assert claims.latest(host.storage, _subject(host.study)) == (1, OTHER)  # it claimed nothing
    finally:
        other.close()


@pytest.mark.parametrize("taker_first", [False, True], ids=["looks-while-taker-races", "taker-done-before-it-looks"])
def test_an_owner_that_lost_its_claim_stops_writing_and_waits_for_the_taker(
    host, data, stored_race, monkeypatch, taker_first
):
    other = Host(host.storage.url)
    taker = Lease(other.study, other.storage, owner=OTHER)
    lost, finished = threading.Event(), threading.Event()
    real_check = Lease.check

    def check(self):
        try:
            real_check(self)
        except LostClaim:
            lost.set()
            if taker_first:  # the taker stores the whole race and releases before this host looks again
                assert finished.wait(timeout=120)
            raise

    monkeypatch.setattr(Lease, "check", check)
    seen: dict[str, object] = {}

    def finish() -> None:
        seen["refused"] = lost.wait(timeout=120)  # the loser's next write was refused...
        seen["after"] = other.study.user_attrs[STUDY_CONFIRMATION]  # ...and it wrote nothing since
        other.study.set_user_attr(STUDY_CONFIRMATION, stored_race)
        taker.release()
        finished.set()

    def take_over(run) -> None:
        # After this host's first stored run, another host judges it dead and takes the race over.
        if seen:
            return
        assert taker.holder() is not None  # this host beats: it is not free...
        assert claims.claim(other.storage, _subject(other.study), 2, owner=OTHER)  # ...but judged dead
        taker.generation = 2
        taker._beat()
        seen["taken"] = other.study.user_attrs[STUDY_CONFIRMATION]
        threading.Thread(target=finish, daemon=True).start()

    try:
        race = confirm(host.study, data, on_run=take_over, **RACE)
        assert seen["refused"] and seen["after"] == seen["taken"]
        assert race.done and race.joined == OTHER and _stored(host.study) == _fields(stored_race)
        assert race.claim_lost  # it raced part of it: not "trained none of it"
        said = [line.strip() for line in confirmation_lines(race) if OTHER in line]
        assert said == [f"raced here until another host ({OTHER}) took it over (this one seemed dead); it finished it"]
        assert claims.latest(host.storage, _subject(host.study)) == (2, OTHER)
    finally:
        other.close()


def test_a_race_in_memory_needs_no_claim(searched, data, reference, tmp_path):
    h = Host(_copy(searched, tmp_path / "s.db"))
    try:
        memory = optuna.create_study(study_name=NAME, storage=optuna.storages.InMemoryStorage())
        for key, value in h.study.user_attrs.items():
            memory.set_user_attr(key, value)
        for t in h.study.get_trials(deepcopy=False):
            memory.add_trial(t)
    finally:
        h.close()
    assert Lease.of(memory) is None
    race = confirm(memory, data, **RACE)
    assert race.done and _stored(memory) == reference


# -- two real hosts on PostgreSQL ------------------------------------------------------------------

# Each host as `python -m search.cli`, with the racer's races and stored runs written down per process.
_COUNTED = """
import os, sys
import search.confirm.racer as racer
log = os.path.join(os.environ["LENET_TEST_RACES"], str(os.getpid()))
run, store = racer._Racer.run, racer._Racer._store
def counted_run(self):
    with open(log, "a") as f:
        f.write("race\\n")
    run(self)
def counted_store(self, r):
    with open(log, "a") as f:
        f.write(f"run {r.trial} {r.seed}\\n")
    store(self, r)
racer._Racer.run, racer._Racer._store = counted_run, counted_store
from search.cli.main import main
main(sys.argv[1:])
"""
HOSTS_ARGS = ("--lanes", "2", "--trials", "8", "--max-epochs", "3")


def _host_process(tiny, storage: str, log: Path, *extra: str) -> subprocess.Popen:
    args = [a for a in tiny.optimize_args(storage, *HOSTS_ARGS, "--jobs", "1", *extra) if a != "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LENET_TEST_RACES": str(log)}
    return subprocess.Popen(
        [sys.executable, "-c", _COUNTED, *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _winner(out: str) -> int:
    found = re.findall(r"winner trial +(\d+):", out)
    assert len(found) == 1, out
    return int(found[0])


def _confirm_lines(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.strip().startswith("confirm trial")]


def test_two_hosts_on_postgresql_race_the_confirmation_once(tiny, postgres_url, tmp_path):
    # The reference: one host alone, on SQLite.
    ref_log = tmp_path / "ref"
    ref_log.mkdir()
    ref = _host_process(tiny, f"sqlite:///{tmp_path}/ref.db", ref_log)
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    reference = study_fields(optuna.load_study(study_name=NAME, storage=f"sqlite:///{tmp_path}/ref.db"))
    assert reference["confirmation"]["done"] and _winner(out) == reference["confirmation"]["incumbent"]

    name = f"confirm-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "hosts"
    log.mkdir()
    try:
        procs = [_host_process(tiny, postgres_url, log, "--study", name) for _ in range(2)]
        results = []
        try:
            for proc in procs:
                results.append(proc.communicate(timeout=300))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
        for proc, (_, err) in zip(procs, results):
            assert proc.returncode == 0, err
        study = optuna.load_study(study_name=name, storage=postgres_url)
        # The whole study, its race included, is the one a single host makes.
        assert differences(study_fields(study), reference) == []
        winner = reference["confirmation"]["incumbent"]
        assert [_winner(out) for out, _ in results] == [winner, winner]
        # Exactly one race was run, by one host, which stored every run; the other trained none.
        written = {int(p.name): p.read_text().splitlines() for p in log.iterdir()}
        racing = [pid for pid, lines in written.items() if "race" in lines]
        assert len(racing) == 1 and written[racing[0]].count("race") == 1, written
        assert set(written) <= {racing[0]} | {p.pid for p in procs}
        owner_runs = [line for line in written[racing[0]] if line.startswith("run ")]
        assert {tuple(map(int, line.split()[1:])) for line in owner_runs} == {
            (r["trial"], r["seed"]) for r in reference["confirmation"]["runs"]
        }
        assert not [line for pid, lines in written.items() if pid != racing[0] for line in lines]
        # One claim, by that host, released once done.
        storage = make_storage(postgres_url)
        try:
            generation, owner = claims.latest(storage, claims.confirmation_subject(study._study_id))
        finally:
            close_storage(storage)
        assert generation == 1 and owner.split(":")[1] == str(racing[0])
        beat = study.user_attrs[STUDY_CONFIRMATION_CLAIM]
        assert beat[CLAIM_OWNER] == owner and beat[CLAIM_RELEASED]
        # The other host showed the runs it found stored as the owner printed them, none of its own.
        owner_index = [p.pid for p in procs].index(racing[0])
        other_lines = _confirm_lines(results[1 - owner_index][1])
        assert set(other_lines) <= set(_confirm_lines(results[owner_index][1]))
        said = [line.strip() for line in "".join(results[1 - owner_index]).splitlines() if "raced by another" in line]
        assert said == [f"raced by another host ({owner}); this one waited for it and trained none of it"]
        assert "raced by another" not in "".join(results[owner_index])
    finally:
        optuna.delete_study(study_name=name, storage=postgres_url)
