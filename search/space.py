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
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Union

import optuna

from lenet.train import TrainConfig


class SpaceError(ValueError):
    """A search-space file or setting that cannot describe a valid space."""


@dataclass(frozen=True)
class FloatParam:
    low: float
    high: float
    log: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class IntParam:
    low: int
    high: int
    log: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class ChoiceParam:
    choices: tuple[Any, ...]

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "choice", "choices": list(self.choices)}


@dataclass(frozen=True)
class FixedParam:
    value: Any

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return self.value  # not sampled; recorded with the trial's config

    def to_dict(self) -> dict[str, Any]:
        return {"type": "fixed", "value": self.value}


Param = Union[FloatParam, IntParam, ChoiceParam, FixedParam]
DEFAULT_MAX_EPOCHS = 15
# Two evaluations per epoch: time to target is measured to half an epoch, and the pruner can
# stop a trial half an epoch sooner (docs/search.md has the replays and the pair of studies).
DEFAULT_EVALS_PER_EPOCH = 2


def default_params(max_epochs: int = DEFAULT_MAX_EPOCHS) -> dict[str, Param]:
    return {
        "lr": FloatParam(1e-3, 0.3, log=True),
        "step_size": IntParam(1, max_epochs),
        "gamma": FloatParam(0.05, 0.9),
        "momentum": FloatParam(0.5, 0.98),
        "batch_size": ChoiceParam((32, 64, 128, 256, 512, 1024, 2048)),
    }


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
        values = {name: param.suggest(trial, name) for name, param in self.params.items()}
        return replace(base, max_epochs=self.max_epochs, evals_per_epoch=self.evals_per_epoch, **values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_epochs": self.max_epochs,
            "evals_per_epoch": self.evals_per_epoch,
            "params": {k: p.to_dict() for k, p in sorted(self.params.items())},
        }

    def baseline_params(self, config: TrainConfig) -> dict[str, Any]:
        """`config`'s values of the sampled parameters, for enqueuing it as a trial (Ray Tune's
        points_to_evaluate). A value outside this space is left out, so the sampler draws it."""
        chosen = {}
        for name, param in self.params.items():
            value = getattr(config, name)
            if isinstance(param, (FloatParam, IntParam)) and param.low <= value <= param.high:
                chosen[name] = value
            elif isinstance(param, ChoiceParam) and value in param.choices:
                chosen[name] = value
        return chosen


BUDGET = ("max_epochs", "evals_per_epoch")  # the [budget] table: the same for every trial
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
            raise SpaceError(f"unknown search parameter {name!r} (searchable: {', '.join(sorted(set(kinds) - NOT_SEARCHED))})")
        if isinstance(p, (FloatParam, IntParam)):
            if not (math.isfinite(p.low) and math.isfinite(p.high)):
                raise SpaceError(f"{name}: low and high must be finite numbers")
            if p.low > p.high:
                raise SpaceError(f"{name}: low ({p.low}) is greater than high ({p.high})")
            if p.log and p.low <= 0:
                raise SpaceError(f"{name}: a log-scale range needs low > 0, got {p.low}")
            samples = (p.low, p.high)
        elif isinstance(p, ChoiceParam):
            if not p.choices:
                raise SpaceError(f"{name}: choices must not be empty")
            samples = p.choices
        else:
            samples = (p.value,)
        for value in samples:
            _check_value(name, value, kinds[name])
    step = space.params.get("step_size")
    high = {IntParam: lambda p: p.high, ChoiceParam: lambda p: max(p.choices), FixedParam: lambda p: p.value}
    if step is not None and high[type(step)](step) > space.max_epochs:
        raise SpaceError(
            f"step_size reaches {high[type(step)](step)} epochs but the budget is max_epochs = {space.max_epochs}: "
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
    except ValueError as exc:
        raise SpaceError(f"{name}: {exc}") from None


def _parse_param(name: str, spec: Any, current: Param | None, kind: type) -> Param:
    if not isinstance(spec, dict):
        return FixedParam(spec)  # `lr = 0.01` fixes the value
    keys = set(spec)
    allowed = {"low", "high", "log", "choices", "value"}
    if keys - allowed:
        raise SpaceError(f"{name}: unknown key(s) {', '.join(sorted(keys - allowed))} (use low/high/log, choices or value)")
    if "value" in spec:
        return FixedParam(spec["value"])
    if "choices" in spec:
        if not isinstance(spec["choices"], list):
            raise SpaceError(f"{name}: choices must be a list")
        return ChoiceParam(tuple(spec["choices"]))
    if kind is bool:
        raise SpaceError(f"{name} is true or false: give a value (`{name} = true`) or choices, not a range")
    base_low = getattr(current, "low", None)
    base_high = getattr(current, "high", None)
    low, high = spec.get("low", base_low), spec.get("high", base_high)
    if low is None or high is None:
        raise SpaceError(f"{name}: a range needs both low and high")
    log = spec.get("log", getattr(current, "log", False))
    if not isinstance(log, bool):
        raise SpaceError(f"{name}: log must be true or false")
    for bound in (low, high):
        _check_value(name, bound, kind)
    if kind is int:
        return IntParam(int(low), int(high), log)
    return FloatParam(float(low), float(high), log)


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
    epochs = max_epochs or budget.get("max_epochs", DEFAULT_MAX_EPOCHS)
    evals = evals_per_epoch or budget.get("evals_per_epoch", DEFAULT_EVALS_PER_EPOCH)
    if not isinstance(epochs, int) or isinstance(epochs, bool):  # default_params needs it; validate() the rest
        raise SpaceError(f"max_epochs must be an integer, got {epochs!r}")
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
