import optuna
import pytest

from search.space import load_space
from search.study import StudyError, StudySettings, make_pruner, make_sampler, make_storage, open_study


def _settings(**kw):
    base = dict(target=0.6, target_source="test", space=load_space(None), device="cpu", threads=2,
                data_checksum="abc", seed=0)  # fmt: skip
    return StudySettings(**{**base, **kw})


def _open(storage, settings, explicit=True):
    return open_study("s", storage, settings, make_sampler("tpe", 0), make_pruner("saturation", settings.target),
                      explicit_target=explicit)  # fmt: skip


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
    with pytest.raises(StudyError, match=message):
        make_storage(url)


def test_new_study_stores_target_space_and_hardware(tmp_path):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    study, notes = _open(storage, _settings())
    assert notes == []
    attrs = study.user_attrs
    assert attrs["target"] == 0.6 and attrs["device"] == "cpu" and attrs["threads"] == 2
    assert attrs["space"] == load_space(None).to_dict()
    assert study.metric_names == ["train seconds to target"]
    assert study.direction == optuna.study.StudyDirection.MINIMIZE


def test_reopen_refuses_another_target_space_or_device(tmp_path):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    _open(storage, _settings())
    with pytest.raises(StudyError, match="has target 0.6, not 0.65"):
        _open(storage, _settings(target=0.65))
    with pytest.raises(StudyError, match="another search space"):
        _open(storage, _settings(space=load_space(None, max_epochs=5)))
    with pytest.raises(StudyError, match=r"evals_per_epoch 2 \(this run: 1\)"):
        _open(storage, _settings(space=load_space(None, evals_per_epoch=1)))
    with pytest.raises(StudyError, match="measured seconds on cpu"):
        _open(storage, _settings(device="cuda:0"))
    _, notes = _open(storage, _settings(threads=1, data_checksum="other"))
    assert any("2 threads per worker" in n for n in notes) and any("another data source" in n for n in notes)


def test_a_study_stored_before_evals_per_epoch_counts_as_once_an_epoch(tmp_path):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    study, _ = _open(storage, _settings(space=load_space(None, evals_per_epoch=1)))
    old = {k: v for k, v in study.user_attrs["space"].items() if k != "evals_per_epoch"}
    study.set_user_attr("space", old)  # as an earlier version stored it
    _open(storage, _settings(space=load_space(None, evals_per_epoch=1)))
    with pytest.raises(StudyError, match=r"evals_per_epoch 1 \(this run: 2\).*--evals-per-epoch"):
        _open(storage, _settings())


def test_unknown_sampler_and_pruner():
    with pytest.raises(StudyError, match="unknown sampler 'bayes'"):
        make_sampler("bayes", 0)
    with pytest.raises(StudyError, match="unknown pruner 'aggressive'"):
        make_pruner("aggressive", 0.6)


@pytest.mark.parametrize("name", ["tpe", "random", "cmaes", "gp", "qmc"])
def test_every_sampler_can_be_made(name):
    assert isinstance(make_sampler(name, 1), optuna.samplers.BaseSampler)


def test_baseline_is_stored_once_when_the_study_is_created(tmp_path):
    storage = make_storage(f"sqlite:///{tmp_path}/s.db")
    baseline = {"lr": 0.05, "batch_size": 128}
    study, _ = _open(storage, _settings(baseline=baseline))
    assert study.user_attrs["baseline"] == baseline
    assert study.get_trials(deepcopy=False) == []  # nothing enqueued (see search.baseline)
    again, _ = _open(storage, _settings(baseline={"lr": 0.01}))  # reopening changes nothing
    assert again.user_attrs["baseline"] == baseline
