"""The training config: everything that defines one training run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from lenet.errors import ConfigError


def option(default: Any, help: str, **cli: Any) -> Any:
    """A field with its help text, from which a command line derives its flag; `cli` holds
    what it needs beyond the field's type: flag, alias, min, above, choices, metavar, env,
    folder, shared (an option several commands declare alike)."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run: sampled by the search, exported, retrained.

    Field metadata carries the help text, so the command line's flags are derived from
    this one definition.
    """

    lr: float = option(0.05, "initial learning rate of SGD")
    momentum: float = option(0.9, "SGD momentum")
    step_size: int = option(4, "StepLR: epochs between learning-rate decays")
    gamma: float = option(0.3, "StepLR: factor applied to the learning rate at each decay")
    batch_size: int = option(128, "images per optimizer step")
    max_epochs: int = option(10, "epochs to train at most", alias="--epochs")
    weight_decay: float = option(0.0, "L2 weight decay of SGD")
    nesterov: bool = option(False, "use Nesterov momentum")
    augment: bool = option(False, "random crop (padding 4) and horizontal flip, per batch on the device")
    evals_per_epoch: int = option(1, "validation evaluations per epoch (finer time-to-target)")
    seed: int = option(0, "seed of weight initialisation, shuffling and augmentation")

    def __post_init__(self) -> None:
        problems = []
        if not (self.lr > 0 and math.isfinite(self.lr)):
            problems.append(f"lr must be a positive number, got {self.lr}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum}")
        if self.step_size < 1:
            problems.append(f"step_size must be at least 1, got {self.step_size}")
        if not 0 < self.gamma <= 1:
            problems.append(f"gamma must be in (0, 1], got {self.gamma}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_epochs < 1:
            problems.append(f"max_epochs must be at least 1, got {self.max_epochs}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must not be negative, got {self.weight_decay}")
        if self.evals_per_epoch < 1:
            problems.append(f"evals_per_epoch must be at least 1, got {self.evals_per_epoch}")
        if self.nesterov and self.momentum == 0:
            problems.append("nesterov needs a momentum above 0")
        if problems:
            raise ConfigError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, require_all: bool = False) -> TrainConfig:
        """Build from a mapping (a config file); unknown keys and wrong types are errors.

        With `require_all`, every field must be present (an exported config names them all).
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown training config field(s): {', '.join(unknown)}")
        if require_all:
            missing = [name for name in known if name not in values]
            if missing:
                raise ConfigError(f"training config lacks field(s): {', '.join(missing)}")
        return cls(**{name: _typed(name, type(known[name].default), value) for name, value in values.items()})

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def _typed(name: str, kind: type, value: Any) -> Any:
    """`value` as the field's type; a ConfigError where it is not one (an integral float is an int)."""
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"training config field {name} must be true or false, got {value!r}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        if not (isinstance(value, float) and value.is_integer()):
            raise ConfigError(f"training config field {name} must be an integer, got {value!r}")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"training config field {name} must be a number, got {value!r}")
    return kind(value)
