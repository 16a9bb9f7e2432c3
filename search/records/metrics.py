"""metrics.json: what `lenet-search train` measured, written beside the run's checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from search.records import keys as k
from search.records.stored import Stored, stored


@dataclass(frozen=True)
class RunMetrics(Stored):
    test_accuracy: float = stored(k.RUN_TEST_ACCURACY)
    test_loss: float = stored(k.RUN_TEST_LOSS)
    best_val_accuracy: float = stored(k.RUN_BEST_VAL_ACCURACY)
    final_val_accuracy: float | None = stored(k.RUN_FINAL_VAL_ACCURACY)
    measured_seconds: float = stored(k.RUN_TRAIN_SECONDS)  # training, evaluation excluded
    wall_seconds: float = stored(k.RUN_WALL_SECONDS)  # measured, evaluation included
    epochs: float = stored(k.RUN_EPOCHS)
    status: str = stored(k.RUN_OUTCOME)  # the training run's: completed | stopped | diverged
    reason: str = stored(k.RUN_REASON)
    target: float | None = stored(k.RUN_TARGET)
    measured_seconds_to_target: float | None = stored(k.RUN_SECONDS_TO_TARGET)
    epochs_to_target: float | None = stored(k.RUN_EPOCHS_TO_TARGET)
    images_to_target: int | None = stored(k.RUN_IMAGES_TO_TARGET)
    config: dict[str, Any] = stored(k.RUN_CONFIG)  # TrainConfig.to_dict()
    device: str = stored(k.RUN_DEVICE)
    threads: int = stored(k.RUN_THREADS)
    data: dict[str, Any] = stored(k.RUN_DATA)  # source, checksum, val_size, split_seed
    started: str = stored(k.RUN_STARTED)
    finished: str = stored(k.RUN_FINISHED)
    versions: dict[str, str] = stored(k.RUN_VERSIONS)
    history: list[dict[str, float]] = stored(k.RUN_HISTORY)  # EvalRecord.to_dict() at every evaluation
    clock_seconds_to_target: float | None = stored(k.RUN_CLOCK_SECONDS_TO_TARGET, None)  # in the export's clock
