"""The storage's faults on a local file: a disk that fills up mid-study and a read-only study
file, on real small file systems (tmpfs); and which errors count as the connection failing."""

from __future__ import annotations

import sqlite3
import subprocess
import time

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from search.study.outage import is_disconnect
from tests.search.cli_helpers import run_cli
from tests.search.run.test_reliability import FINISHED, ROOT, _command, _env, _start, _wait_mid_trial
from tests.tmpfs import fill, small_tmpfs


def test_what_counts_as_the_connection_failing():
    import psycopg

    dropped = sqlalchemy.exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("server closed the connection"))
    assert is_disconnect(dropped)
    wrapped = optuna.exceptions.StorageInternalError("during the commit")
    wrapped.__cause__ = dropped
    assert is_disconnect(wrapped)
    assert not is_disconnect(sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_disconnect(optuna.exceptions.StorageInternalError("invalid data"))
    assert not is_disconnect(ValueError("Cannot tell a COMPLETE trial."))


def _fields(url: str) -> dict[int, tuple]:
    trials = optuna.load_study(study_name="lenet5-cifar10", storage=url).get_trials()
    return {t.number: (t.state, t.value, t.params, t.user_attrs) for t in trials}


def test_a_disk_that_fills_mid_study_is_one_line_and_the_study_resumes(tiny, tmp_path):
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        url = f"sqlite:///{disk}/s.db"
        proc = _start(tiny, url, "--trials", "6")
        try:
            _wait_mid_trial(url, proc)
            before = {n: f for n, f in _fields(url).items() if f[0] in FINISHED}
            filler = fill(disk)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        lines = err.strip().splitlines()
        assert proc.returncode == 2, err
        assert lines[-1] == f"Error: no space left on the device holding {disk}/s.db (the study is as last written)"
        assert "Traceback" not in err
        filler.unlink()
        time.sleep(4)  # the stopped run's trial goes stale (LENET_GRACE_SECONDS=3), to be taken over
        rerun = subprocess.run(
            _command(tiny, url, "--trials", "6"), env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert rerun.returncode == 0, rerun.stderr
        after = _fields(url)
        assert len([f for f in after.values() if f[0] in FINISHED]) == 6
        assert not [f for f in after.values() if f[0] == TrialState.RUNNING]
        assert {n: after[n] for n in before} == before


def test_a_read_only_study_is_listed_shown_and_exported_not_written(tiny, tmp_path, finished_study):
    with small_tmpfs(tmp_path / "ro", "16m") as ro:
        source = finished_study[len("sqlite:///") :]
        with sqlite3.connect(source) as conn:  # the WAL folded into the file, so the copy is whole
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        subprocess.run(["cp", source, str(ro / "s.db")], check=True)
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        url = f"sqlite:///{ro}/s.db"
        listed = run_cli("studies", "--storage", url)
        assert listed.code == 0 and "lenet5-cifar10" in listed.out, listed.err
        shown = run_cli("studies", "--storage", url, "show", "lenet5-cifar10")
        assert shown.code == 0 and "6 trials" in shown.out, shown.err
        exported = run_cli("export", "--storage", url, "-o", tmp_path / "best.json")
        assert exported.code == 0 and (tmp_path / "best.json").is_file(), exported.err
        refused = run_cli(*tiny.optimize_args(url, "--trials", "8"))
        assert refused.code == 2 and refused.err.count("\n") == 1, refused.err
        assert f"SQLite storage {ro}/s.db is read-only" in refused.err
        assert sorted(p.name for p in ro.iterdir()) == ["s.db"]  # no WAL or lock file


@pytest.mark.parametrize("damage", ["not a database", "pages overwritten"])
def test_a_damaged_study_file_is_one_line(tmp_path, finished_study, damage):
    import random
    import shutil

    path = tmp_path / "damaged.db"
    shutil.copy(finished_study[len("sqlite:///") :], path)
    with sqlite3.connect(path) as conn:  # the WAL folded into the file, so the copy is whole
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    if damage == "not a database":
        data[:100] = bytes(100)
    else:  # the schema intact, the trials' pages not
        rng = random.Random(1)
        for i in range(len(data) // 2, len(data), 97):
            data[i] = rng.randrange(256)
    path.write_bytes(bytes(data))
    result = run_cli("studies", "--storage", f"sqlite:///{path}", "show", "lenet5-cifar10")
    line = result.err.strip().splitlines()[-1]
    assert result.code == 2 and line.startswith(f"Error: SQLite storage {path} "), result.err
    assert "not a database" in line or "damaged" in line


def test_every_call_optunas_cache_makes_on_the_database_is_guarded():
    """The guarded calls are named (search/study/outage.py): fail loudly when Optuna moves them."""
    import inspect
    import re

    from optuna.storages import RDBStorage
    from optuna.storages._cached_storage import _CachedStorage

    from search.study.outage import _CALLS, GuardedStorage

    made = set(re.findall(r"self\._backend\.(\w+)\(", inspect.getsource(_CachedStorage)))
    unguarded = made - set(_CALLS) - {"get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}
    assert unguarded == set()
    assert all(callable(getattr(RDBStorage, name)) for name in _CALLS)
    assert all(getattr(GuardedStorage, name) is not getattr(RDBStorage, name) for name in _CALLS)
