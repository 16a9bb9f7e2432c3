import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from lenet.config import TrainConfig
from search.space import Fixed, SpaceError, load_space


def _write(tmp_path, text):
    p = tmp_path / "space.toml"
    p.write_text(text)
    return p


def test_default_space_covers_the_five_schedule_parameters():
    space = load_space(None)
    assert set(space.params) == {"lr", "step_size", "gamma", "momentum", "batch_size"}
    assert space.params["lr"].log and space.params["lr"].low <= 0.01 <= space.params["lr"].high
    assert space.params["batch_size"].choices == (32, 64, 128, 256, 512, 1024, 2048)
    assert space.params["step_size"].high == space.max_epochs


def test_step_size_follows_the_epoch_budget():
    assert load_space(None, max_epochs=6).params["step_size"] == IntDistribution(1, 6)


def test_toml_narrows_fixes_and_widens(tmp_path):
    space = load_space(
        _write(
            tmp_path,
            """
lr = { low = 0.005, high = 0.1 }
momentum = 0.9
[batch_size]
choices = [128, 256]
[weight_decay]
low = 0.0
high = 0.001
[budget]
max_epochs = 8
evals_per_epoch = 4
""",
        )
    )
    assert space.params["lr"] == FloatDistribution(0.005, 0.1, log=True)  # keeps the default's log scale
    assert space.params["momentum"] == Fixed(0.9)
    assert space.params["batch_size"] == CategoricalDistribution((128, 256))
    assert space.params["weight_decay"] == FloatDistribution(0.0, 0.001)
    assert space.max_epochs == 8 and space.params["step_size"] == IntDistribution(1, 8)
    assert space.evals_per_epoch == 4 and space.to_dict()["evals_per_epoch"] == 4
    assert load_space(None).evals_per_epoch == 2  # the default: time to target to half an epoch


def test_samples_are_train_configs_inside_the_space(tmp_path):
    space = load_space(_write(tmp_path, "momentum = 0.9\n[budget]\nmax_epochs = 5\n"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        cfg = space.sample(trial, TrainConfig(seed=7))
        assert isinstance(cfg, TrainConfig) and cfg.seed == 7 and cfg.max_epochs == 5 and cfg.evals_per_epoch == 2
        assert 1e-3 <= cfg.lr <= 0.3 and 1 <= cfg.step_size <= 5 and cfg.momentum == 0.9
        assert cfg.batch_size in (32, 64, 128, 256, 512, 1024, 2048)
        assert set(trial.params) == {"lr", "step_size", "gamma", "batch_size"}  # fixed ones are not sampled
        study.tell(trial, 1.0)


@pytest.mark.parametrize(
    "text,message",
    [
        ("lr = { low = 0.1, high = 0.01 }", "lr: `low <= high` must hold, but got (low=0.1, high=0.01)"),
        ("lr = { low = -0.1, high = 0.01 }", "lr: "),
        ("lr = -0.5", "lr must be a positive number"),
        ("learning_rate = { low = 0.1, high = 1.0 }", "unknown search parameter 'learning_rate'"),
        ("batch_size = { choices = [32, 'big'] }", "'big' is not a int"),
        ("momentum = 'high'", "'high' is not a float"),
        ("lr = = 3", "not valid TOML"),
        ("lr = { low = 0.1, hgh = 0.2 }", "unknown key(s) hgh"),
        ("lr = { low = 0.0, high = 0.1 }", "lr: "),
        ("batch_size = { choices = [] }", "choices must be a non-empty list"),
        ("[budget]\nmax_epochs = 0", "max_epochs must be an integer of at least 1, got 0"),
        ("step_size = { low = 1, high = 40 }\n[budget]\nmax_epochs = 10", "budget is max_epochs = 10"),
        ("[budget]\nmax_epochs = 'ten'", "max_epochs must be an integer"),
        ("[budget]\nepochs = 3", "[budget] takes only max_epochs and evals_per_epoch"),
        ("[budget]\nevals_per_epoch = 0", "evals_per_epoch must be an integer of at least 1, got 0"),
        ("[budget]\nevals_per_epoch = 1.5", "evals_per_epoch must be an integer"),
        ("augment = { low = 0, high = 1 }", "augment is true or false"),
    ],
)
def test_bad_space_files(tmp_path, text, message):
    with pytest.raises(SpaceError, match=None) as info:
        load_space(_write(tmp_path, text))
    assert message in str(info.value)


def test_space_round_trips_to_a_stable_dict(tmp_path):
    a = load_space(_write(tmp_path, "momentum = 0.9"))
    b = load_space(_write(tmp_path, "momentum = 0.9"))
    assert a.to_dict() == b.to_dict() != load_space(None).to_dict()


def test_baseline_params_are_the_defaults_that_lie_inside_the_space(tmp_path):
    from lenet.config import TrainConfig

    assert load_space(None).baseline_params(TrainConfig()) == {
        "lr": 0.05,
        "step_size": 4,
        "gamma": 0.3,
        "momentum": 0.9,
        "batch_size": 128,
    }
    f = tmp_path / "s.toml"
    f.write_text("lr = { low = 0.001, high = 0.01 }\nmomentum = 0.95\n[batch_size]\nchoices = [64, 256]\n")
    # lr 0.05 and batch 128 lie outside: the sampler draws them; a fixed momentum is not a parameter.
    assert load_space(f).baseline_params(TrainConfig()) == {"step_size": 4, "gamma": 0.3}


def test_the_stored_form_is_the_one_studies_were_created_with():
    # Studies stored before the space used optuna.distributions must still reopen.
    params = load_space(None, max_epochs=15).to_dict()["params"]
    assert params["lr"] == {"type": "float", "low": 0.001, "high": 0.3, "log": True}
    assert params["step_size"] == {"type": "int", "low": 1, "high": 15, "log": False}
    assert params["batch_size"] == {"type": "choice", "choices": [32, 64, 128, 256, 512, 1024, 2048]}
