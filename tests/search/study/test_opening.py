import optuna
import pytest

import search.study.opening
from search.errors import StorageError, StudyError
from search.pruning.factory import make_pruner
from search.records.study import StudyRecord, study_record
from search.sampling.paced import PacedAfterCompleted
from search.sampling.scheduled import ScheduledSampler
from search.space import load_space
from search.study.opening import CreatedMeanwhile, open_study, record_once_created
from search.study.storage import make_storage


def _record(**kw):
    base = dict(
        target=0.6,
        target_source="test",
        space=load_space(None).to_dict(),
        device="cpu",
        threads=2,
        data_checksum="abc",
        seed=0,
        created="now",
    )
    return StudyRecord(**{**base, **kw})


def _open(storage, record, explicit=True, sampler="tpe"):
    return open_study(
        "s",
        storage,
        record,
        record_once_created(storage, "s"),
        sampler=sampler,
        seed=0,
        pruner=make_pruner("saturation", record.target, 15),
        explicit_target=explicit,
    )


def test_sqlite_file_and_folder_are_created(tmp_path):
    make_storage(f"sqlite:///{tmp_path}/deep/er/lenet.db")
    assert (tmp_path / "deep" / "er" / "lenet.db").is_file()


@pytest.mark.parametrize(
    "url,message",
    [
        ("not-a-url", "is not a database URL"),
        ("nosuchdb://x/y", "cannot be parsed"),
        ("postgresql://nobody@127.0.0.1:1/none", "cannot be reached"),
    ],
)
def test_bad_storage_urls(url, message):
    with pytest.raises(StorageError, match=message):
        make_storage(url)


def test_new_study_stores_its_record(tmp_path):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    study, notes = _open(storage, _record())
    assert notes == []
    record = study_record(study)
    assert record == _record()
    assert record.target == 0.6 and record.device == "cpu" and record.threads == 2
    assert record.space == load_space(None).to_dict()
    assert study.metric_names == ["training seconds to target (s, study clock)"]
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    # The sampler is built once; per trial it builds TPE, which sees trials stopped as slow at
    # their pace; no baseline here.
    assert isinstance(study.sampler, ScheduledSampler) and study.sampler.baseline == {}
    assert isinstance(study.sampler._base, PacedAfterCompleted)
    assert isinstance(study.sampler._base.base, optuna.samplers.TPESampler)


def test_reopen_refuses_another_target_space_or_device(tmp_path):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    _open(storage, _record())
    with pytest.raises(StudyError, match="has target 0.6, not 0.65"):
        _open(storage, _record(target=0.65))
    with pytest.raises(StudyError, match="another search space"):
        _open(storage, _record(space=load_space(None, max_epochs=5).to_dict()))
    with pytest.raises(StudyError, match=r"evals_per_epoch 2 \(this run: 1\)"):
        _open(storage, _record(space=load_space(None, evals_per_epoch=1).to_dict()))
    with pytest.raises(StudyError, match="measured seconds on cpu"):
        _open(storage, _record(device="cuda:0"))
    _, notes = _open(storage, _record(threads=1, data_checksum="other"))
    assert any("2 threads per worker" in n for n in notes) and any("another data source" in n for n in notes)


def test_a_study_stored_before_evals_per_epoch_counts_as_once_an_epoch(tmp_path):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    study, _ = _open(storage, _record(space=load_space(None, evals_per_epoch=1).to_dict()))
    old = {k: v for k, v in study_record(study).space.items() if k != "evals_per_epoch"}
    study.set_user_attr("space", old)  # as an earlier version stored it
    _open(storage, _record(space=load_space(None, evals_per_epoch=1).to_dict()))
    with pytest.raises(
        StudyError, match=r"evals_per_epoch 1 \(this run: 2\).*same space file, max_epochs and evals_per_epoch"
    ):
        _open(storage, _record())


def test_a_study_not_made_by_lenet_search_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(search.study.opening, "CREATION_SECONDS", 0.3)  # an empty one might be being created
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    optuna.create_study(study_name="s", storage=storage).set_user_attr("owner", "alice")
    with pytest.raises(StudyError, match="not created by lenet-search"):
        _open(storage, _record())


def test_unknown_sampler_and_pruner_are_bugs_not_input():
    # The command line's choices check the names; the factories only meet programmer errors.
    from search.sampling.factory import make_sampler

    with pytest.raises(ValueError, match="unknown sampler 'bayes'") as info:
        make_sampler("bayes", 0)
    assert not isinstance(info.value, StudyError)
    with pytest.raises(ValueError, match="unknown pruner 'aggressive'"):
        make_pruner("aggressive", 0.6, 10)


@pytest.mark.parametrize("name", ["tpe", "random", "cmaes", "gp", "qmc"])
def test_every_sampler_can_be_made(name):
    from search.sampling.factory import make_sampler

    assert isinstance(make_sampler(name, 1), optuna.samplers.BaseSampler)


def test_baseline_is_stored_once_when_the_study_is_created(tmp_path):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    baseline = {"lr": 0.05, "batch_size": 128}
    study, _ = _open(storage, _record(baseline=baseline), sampler="random")
    assert study_record(study).baseline == baseline
    assert isinstance(study.sampler, ScheduledSampler) and study.sampler.baseline == baseline
    assert study.get_trials(deepcopy=False) == []  # nothing enqueued (see search/sampling/scheduled.py)
    again, _ = _open(storage, _record(baseline={"lr": 0.01}), sampler="random")  # reopening changes nothing
    assert study_record(again).baseline == baseline and again.sampler.baseline == baseline


def test_gpu_provenance_is_stored_and_another_card_is_warned_about(tmp_path):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    h100 = {"type": "cuda", "name": "NVIDIA H100 80GB HBM3", "count": 1, "cuda": "12.8", "cudnn": 91002}
    study, _ = _open(storage, _record(device="cuda", threads=1, hardware=h100, jobs=2))
    assert study_record(study).hardware == h100 and study_record(study).jobs == 2
    _, notes = _open(storage, _record(device="cuda:0", threads=1, hardware={**h100, "name": "Tesla T4"}))
    assert any("timed on NVIDIA H100 80GB HBM3, this run uses Tesla T4" in n for n in notes)
    _, notes = _open(storage, _record(device="cuda", threads=1, hardware={**h100, "cudnn": 90100}))
    assert any("cudnn 91002, this run has 90100" in n for n in notes)
    with pytest.raises(StudyError, match="measured seconds on cuda"):
        _open(storage, _record(device="cpu", threads=1, hardware={"type": "cpu", "name": "x", "count": 2}))


def _created_by_another_host(storage, monkeypatch, record, delay=0.5):
    """The other host's create_new_study wins: the study exists, and its attributes (the target
    last) are written `delay` seconds later; this host's own creation is refused as a duplicate."""
    import threading

    real_create = storage.create_new_study

    def create(directions, study_name):
        study_id = real_create(directions=directions, study_name=study_name)
        attrs = record.items()

        def write():
            for key in sorted(attrs, key=lambda k: k == "target"):
                storage.set_study_user_attr(study_id, key, attrs[key])

        threading.Timer(delay, write).start()
        raise optuna.exceptions.DuplicatedStudyError(study_name)

    monkeypatch.setattr(storage, "create_new_study", create)


def test_a_host_that_loses_the_race_to_create_starts_again_and_joins_the_whole_study(tmp_path, monkeypatch):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    _created_by_another_host(storage, monkeypatch, _record(seed=7))
    with pytest.raises(CreatedMeanwhile):
        _open(storage, _record(seed=0))
    theirs = record_once_created(storage, "s")  # waits for the other host's target
    assert theirs is not None and theirs.seed == 7
    study, notes = _open(storage, _record(seed=0))  # now a reopen
    assert study_record(study).seed == 7 and notes == [] and len(optuna.get_all_study_names(storage)) == 1


def test_a_target_written_between_the_two_looks_is_the_record_not_a_refusal(tmp_path, monkeypatch):
    """The interleaving CI hit: the first look sees the attributes without their target, the
    other host writes the target, and the second look sees a whole record."""
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    _open(storage, _record(seed=7))
    real_attrs = storage.get_study_user_attrs
    looks = []

    def attrs(study_id):
        looks.append(study_id)
        whole = real_attrs(study_id)
        return {k: v for k, v in whole.items() if k != "target"} if len(looks) == 1 else whole

    monkeypatch.setattr(storage, "get_study_user_attrs", attrs)
    theirs = record_once_created(storage, "s")
    assert theirs is not None and theirs.seed == 7 and len(looks) >= 2


def test_a_foreign_study_with_trials_is_refused_without_waiting(tmp_path):
    import time

    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    optuna.create_study(study_name="s", storage=storage).add_trial(optuna.trial.create_trial(value=1.0))
    started = time.monotonic()
    with pytest.raises(StudyError, match="not created by lenet-search"):
        record_once_created(storage, "s")
    assert time.monotonic() - started < 1.0
