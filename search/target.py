"""The study's target: the validation accuracy at which LeNet-5 counts as saturated.

DEFAULT_TARGET was measured on the real CIFAR-10 archive (docs/search.md, "The target"): the
plateau of well-tuned long runs, less 1.5 points. `--target auto` measures it again on the
user's own data and machine with `calibrate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lenet.config import TrainConfig
from lenet.data import DeviceData
from lenet.train import train
from search.errors import RequestError

DEFAULT_TARGET = 0.62
BELOW_PLATEAU = 0.015
# A schedule that plateaus reliably on CIFAR-10 (measured here: val 63.3-63.5 %).
REFERENCE = TrainConfig(lr=0.05, momentum=0.9, batch_size=128, step_size=4, gamma=0.3, max_epochs=12)


@dataclass(frozen=True)
class Calibration:
    target: float
    plateau: float
    curve: list[float]
    config: TrainConfig
    train_seconds: float

    @property
    def note(self) -> str:
        return (
            f"auto: plateau {self.plateau:.4f} (best 3-evaluation mean of validation accuracy) of the reference "
            f"schedule lr={self.config.lr} bs={self.config.batch_size} step={self.config.step_size} "
            f"gamma={self.config.gamma} over {self.config.max_epochs} epochs, less {BELOW_PLATEAU}"
        )


def plateau_of(curve: list[float], window: int = 3) -> float:
    """The best mean of `window` consecutive evaluations: robust to one lucky epoch."""
    if len(curve) < window:
        return max(curve)
    return max(sum(curve[i : i + window]) / window for i in range(len(curve) - window + 1))


def calibrate(data: DeviceData, threads: int | None = None, config: TrainConfig = REFERENCE) -> Calibration:
    """Train the reference schedule and derive the target from its plateau."""
    result = train(config, data, threads=threads)
    curve = [r.val_accuracy for r in result.history]
    plateau = plateau_of(curve)
    return Calibration(round(plateau - BELOW_PLATEAU, 4), plateau, curve, config, result.train_seconds)


def parse_target(text: str | None) -> float | str | None:
    """A target as given: a validation accuracy, 'auto', or None (the stored one, else the default)."""
    if text is None or text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise RequestError(
            f"the target must be a number in (0, 1) or 'auto', got {text!r}", subject="target_text"
        ) from None
    if not (0 < value < 1 and math.isfinite(value)):
        raise RequestError(f"the target must be a validation accuracy in (0, 1), got {text}", subject="target_text")
    return value
