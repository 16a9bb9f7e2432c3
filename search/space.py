"""The search space: which TrainConfig fields are sampled, over what ranges.

The defaults live here and nowhere else. They come from the seed experiments and the
measurements in docs/search.md: LR from 1e-3 to 0.3 (0.01 worked at batch 2048, 0.05 and 0.1
at batch 128-512 here, 0.05/0.1 underfit at 2048), StepLR steps of 1 epoch up to the whole
budget, gamma from 0.05 to 0.9, momentum from 0.5 to 0.98, batch sizes 32 to 2048.

A `--space FILE` (TOML) narrows, widens or fixes any parameter:

    [lr]
    low = 0.005
    high = 0.1          # log scale stays as it was unless `log = false`
    [batch_size]
    choices = [128, 256, 512]
    [momentum]
    value = 0.9         # fixed: not sampled
    [budget]
    max_epochs = 12
    evals_per_epoch = 2 # validation evaluations per epoch: where time to target is measured
                        # and where the pruner decides
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
import tomllib
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from lenet.config import TrainConfig
from lenet.errors import InputError
from search.errors import SpaceError
from search.records.keys import SPACE_EVALS_PER_EPOCH, SPACE_MAX_EPOCHS, SPACE_PARAMS


@dataclass(frozen=True)
class Fixed:
    """A parameter held at one value: not sampled, recorded with the trial's config."""

    value: Any


# A sampled parameter is Optuna's own distribution (its constructor checks the range).
Param = FloatDistribution | IntDistribution | CategoricalDistribution | Fixed
DEFAULT_MAX_EPOCHS = 15
# Two evaluations per epoch: time to target is measured to half an epoch, and the pruner can
# stop a trial half an epoch sooner (docs/search.md has the replays and the pair of studies).
DEFAULT_EVALS_PER_EPOCH = 2


def default_params(max_epochs: int = DEFAULT_MAX_EPOCHS) -> dict[str, Param]:
    return {
        "lr": FloatDistribution(1e-3, 0.3, log=True),
        "step_size": IntDistribution(1, max_epochs),
        "gamma": FloatDistribution(0.05, 0.9),
        "momentum": FloatDistribution(0.5, 0.98),
        "batch_size": CategoricalDistribution((32, 64, 128, 256, 512, 1024, 2048)),
    }


def suggest(trial: optuna.Trial, name: str, param: Param) -> Any:
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, FloatDistribution):
        return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntDistribution):
        return trial.suggest_int(name, param.low, param.high, log=param.log, step=param.step)
    return trial.suggest_categorical(name, list(param.choices))


def contains(param: BaseDistribution | Fixed, value: Any) -> bool:
    """Whether `value` is one that `param` can take."""
    if isinstance(param, Fixed):
        return value == param.value
    if isinstance(param, CategoricalDistribution):
        return value in param.choices
    if isinstance(param, (FloatDistribution, IntDistribution)):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and param.low <= value <= param.high
    return False


def param_to_dict(param: Param) -> dict[str, Any]:
    """The stored form (a study's `space` attribute): the same as before distributions were used,
    so that studies stored then still reopen."""
    if isinstance(param, Fixed):
        return {"type": "fixed", "value": param.value}
    if isinstance(param, CategoricalDistribution):
        return {"type": "choice", "choices": list(param.choices)}
    kind = "int" if isinstance(param, IntDistribution) else "float"
    return {"type": kind, "low": param.low, "high": param.high, "log": param.log}


@dataclass(frozen=True)
class SearchSpace:
    """Sampled and fixed TrainConfig fields, plus the per-trial budget: epochs, and the
    evaluations per epoch that time to target is measured at."""

    params: dict[str, Param] = field(default_factory=default_params)
    max_epochs: int = DEFAULT_MAX_EPOCHS
    evals_per_epoch: int = DEFAULT_EVALS_PER_EPOCH

    def __post_init__(self) -> None:
        validate(self)

    def sample(self, trial: optuna.Trial, base: TrainConfig) -> TrainConfig:
        """A TrainConfig with every parameter drawn (or fixed) for this trial."""
        values = {name: suggest(trial, name, param) for name, param in self.params.items()}
        return replace(base, max_epochs=self.max_epochs, evals_per_epoch=self.evals_per_epoch, **values)

    def to_dict(self) -> dict[str, Any]:
        return {
            SPACE_MAX_EPOCHS: self.max_epochs,
            SPACE_EVALS_PER_EPOCH: self.evals_per_epoch,
            SPACE_PARAMS: {k: param_to_dict(p) for k, p in sorted(self.params.items())},
        }

    def holds(self, config: TrainConfig) -> bool:
        """Whether this space trains `config`'s schedule as it is: each parameter's value is one
        it can take (a fixed one, its value)."""
        return all(contains(param, getattr(config, name)) for name, param in self.params.items())

    def baseline_params(self, config: TrainConfig) -> dict[str, Any]:
        """`config`'s values of the sampled parameters, for the baseline trial (Ray Tune's
        points_to_evaluate). A value outside this space is left out, so the sampler draws it."""
        return {
            name: getattr(config, name)
            for name, param in self.params.items()
            if not isinstance(param, Fixed) and contains(param, getattr(config, name))
        }


BUDGET = (SPACE_MAX_EPOCHS, SPACE_EVALS_PER_EPOCH)  # the [budget] table, as stored: the same for every trial
NOT_SEARCHED = {*BUDGET, "seed"}


def _field_kinds() -> dict[str, type]:
    return {name: type(default) for name, default in TrainConfig.defaults().items()}


def validate(space: SearchSpace) -> None:
    kinds = _field_kinds()
    for name in BUDGET:
        value = getattr(space, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SpaceError(f"{name} must be an integer of at least 1, got {value!r}")
    for name, p in space.params.items():
        if name not in kinds or name in NOT_SEARCHED:
            raise SpaceError(
                f"unknown search parameter {name!r} (searchable: {', '.join(sorted(set(kinds) - NOT_SEARCHED))})"
            )
        if isinstance(p, (FloatDistribution, IntDistribution)):
            if not (math.isfinite(p.low) and math.isfinite(p.high)):
                raise SpaceError(f"{name}: low and high must be finite numbers")
            samples = (p.low, p.high)
        elif isinstance(p, CategoricalDistribution):
            samples = p.choices
        else:
            samples = (p.value,)
        for value in samples:
            _check_value(name, value, kinds[name])
    step = space.params.get("step_size")
    longest = {
        IntDistribution: lambda p: p.high,
        CategoricalDistribution: lambda p: max(p.choices),
        Fixed: lambda p: p.value,
    }
    if step is not None and longest[type(step)](step) > space.max_epochs:
        raise SpaceError(
            f"step_size reaches {longest[type(step)](step)} epochs but the budget is max_epochs = {space.max_epochs}: "
            "a step longer than the run never decays the learning rate"
        )


def _check_value(name: str, value: Any, kind: type) -> None:
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        raise SpaceError(f"{name}: {value!r} is not a {kind.__name__}")
    try:
        TrainConfig(**{name: value})
    except InputError as exc:
        raise SpaceError(f"{name}: {exc}") from None


def _parse_param(name: str, spec: Any, current: Param | None, kind: type) -> Param:
    if not isinstance(spec, dict):
        return Fixed(spec)  # `lr = 0.01` fixes the value
    keys = set(spec)
    allowed = {"low", "high", "log", "choices", "value"}
    if keys - allowed:
        raise SpaceError(
            f"{name}: unknown key(s) {', '.join(sorted(keys - allowed))} (use low/high/log, choices or value)"
        )
    if "value" in spec:
        return Fixed(spec["value"])
    if "choices" in spec:
        if not isinstance(spec["choices"], list) or not spec["choices"]:
            raise SpaceError(f"{name}: choices must be a non-empty list")
        return CategoricalDistribution(tuple(spec["choices"]))
    if kind is bool:
        raise SpaceError(f"{name} is true or false: give a value (`{name} = true`) or choices, not a range")
    low, high = spec.get("low", getattr(current, "low", None)), spec.get("high", getattr(current, "high", None))
    if low is None or high is None:
        raise SpaceError(f"{name}: a range needs both low and high")
    log = spec.get("log", getattr(current, "log", False))
    if not isinstance(log, bool):
        raise SpaceError(f"{name}: log must be true or false")
    for bound in (low, high):
        _check_value(name, bound, kind)
    try:  # Optuna's own checks: low <= high, low > 0 on a log scale
        if kind is int:
            return IntDistribution(int(low), int(high), log=log)
        return FloatDistribution(float(low), float(high), log=log)
    except ValueError as exc:
        raise SpaceError(f"{name}: {exc}") from None


def load_space(path: Path | None, max_epochs: int | None = None, evals_per_epoch: int | None = None) -> SearchSpace:
    """The default space, changed by the TOML file at `path` and by explicit budget values."""
    doc: dict[str, Any] = {}
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise SpaceError(f"cannot read space file {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SpaceError(f"space file {path} is not valid TOML: {exc}") from exc
    budget = doc.pop("budget", {})
    if not isinstance(budget, dict) or set(budget) - set(BUDGET):
        raise SpaceError(f"[budget] takes only {' and '.join(BUDGET)}")
    epochs = max_epochs or budget.get(SPACE_MAX_EPOCHS, DEFAULT_MAX_EPOCHS)
    evals = evals_per_epoch or budget.get(SPACE_EVALS_PER_EPOCH, DEFAULT_EVALS_PER_EPOCH)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:  # default_params needs it
        raise SpaceError(f"max_epochs must be an integer of at least 1, got {epochs!r}")
    params = default_params(epochs)  # step_size's default range follows the budget
    kinds = _field_kinds()
    try:
        for name, spec in doc.items():
            if name not in kinds or name in NOT_SEARCHED:
                raise SpaceError(f"unknown search parameter {name!r} in {path}")
            params[name] = _parse_param(name, spec, params.get(name), kinds[name])
        return SearchSpace(params=params, max_epochs=epochs, evals_per_epoch=evals)
    except SpaceError as exc:
        raise SpaceError(f"space file {path}: {exc}" if path else str(exc)) from None
