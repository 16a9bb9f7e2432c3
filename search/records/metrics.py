"""metrics.json: what `lenet-search train` measured, written beside the run's checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from search.records import keys as k


@dataclass(frozen=True)
class RunMetrics:
    test_accuracy: float
    test_loss: float
    best_val_accuracy: float
    final_val_accuracy: float | None
    measured_seconds: float  # training, evaluation excluded
    wall_seconds: float  # measured, evaluation included
    epochs: float
    status: str  # the training run's: completed | stopped | diverged
    reason: str
    target: float | None
    measured_seconds_to_target: float | None
    epochs_to_target: float | None
    images_to_target: int | None
    config: dict[str, Any]  # TrainConfig.to_dict()
    device: str
    threads: int
    data: dict[str, Any]  # source, checksum, val_size, split_seed
    started: str
    finished: str
    versions: dict[str, str]
    history: list[dict[str, float]]  # EvalRecord.to_dict() at every evaluation
    clock_seconds_to_target: float | None = None  # in the --config export's clock, when it has one

    _KEYS: ClassVar[dict[str, str]] = dict(
        test_accuracy=k.RUN_TEST_ACCURACY,
        test_loss=k.RUN_TEST_LOSS,
        best_val_accuracy=k.RUN_BEST_VAL_ACCURACY,
        final_val_accuracy=k.RUN_FINAL_VAL_ACCURACY,
        measured_seconds=k.RUN_TRAIN_SECONDS,
        wall_seconds=k.RUN_WALL_SECONDS,
        epochs=k.RUN_EPOCHS,
        status=k.RUN_OUTCOME,
        reason=k.RUN_REASON,
        target=k.RUN_TARGET,
        measured_seconds_to_target=k.RUN_SECONDS_TO_TARGET,
        epochs_to_target=k.RUN_EPOCHS_TO_TARGET,
        images_to_target=k.RUN_IMAGES_TO_TARGET,
        config=k.RUN_CONFIG,
        device=k.RUN_DEVICE,
        threads=k.RUN_THREADS,
        data=k.RUN_DATA,
        started=k.RUN_STARTED,
        finished=k.RUN_FINISHED,
        versions=k.RUN_VERSIONS,
        history=k.RUN_HISTORY,
        clock_seconds_to_target=k.RUN_CLOCK_SECONDS_TO_TARGET,
    )

    def to_dict(self) -> dict[str, Any]:
        return {self._KEYS[f.name]: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunMetrics:
        return cls(**{f.name: d[cls._KEYS[f.name]] for f in fields(cls) if cls._KEYS[f.name] in d})
