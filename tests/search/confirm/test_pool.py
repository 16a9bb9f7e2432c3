"""The race in the study's lanes: helper processes train its runs ahead, and the race is the one
its runs in this process give, run for run."""

import shutil

import optuna

from lenet.data import load_dataset
from lenet.device import Placement
from search.confirm.pool import RunPool
from search.confirm.racer import LocalRuns, confirm
from search.study.compare import differences, study_fields


def _race(storage: str, tiny, runs) -> dict:
    study = optuna.load_study(study_name="lenet5-cifar10", storage=storage)
    data = load_dataset(tiny.archive, "cpu", val_size=200)
    race = confirm(study, data, top=3, n_seeds=3, runs=runs)
    assert race is not None and race.done and len(race.runs) >= 3
    return study_fields(optuna.load_study(study_name="lenet5-cifar10", storage=storage))["confirmation"]


def test_the_race_in_helpers_is_the_race_in_this_process(finished_study, tiny, tmp_path):
    source = finished_study.removeprefix("sqlite:///")
    for name in ("local", "pool"):
        shutil.copy(source, tmp_path / f"{name}.db")
    local_storage, pool_storage = f"sqlite:///{tmp_path}/local.db", f"sqlite:///{tmp_path}/pool.db"
    for storage in (local_storage, pool_storage):  # the fixture's study raced already: race afresh
        study = optuna.load_study(study_name="lenet5-cifar10", storage=storage)
        study.set_user_attr("confirmation", None)
    data = load_dataset(tiny.archive, "cpu", val_size=200)
    local = _race(local_storage, tiny, LocalRuns(data, threads=1))
    with RunPool([Placement("cpu", 1), Placement("cpu", 1)], str(tiny.archive), 200) as pool:
        in_helpers = _race(pool_storage, tiny, pool)
    assert differences(local, in_helpers) == []
