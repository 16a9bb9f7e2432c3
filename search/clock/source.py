"""Where a study's step clock comes from: measured for the settings its space can train with,
or reused from another study or a file (`--clock-from`), so that a study can be repeated exactly."""

from __future__ import annotations

from pathlib import Path

from optuna.distributions import CategoricalDistribution
from optuna.storages import BaseStorage

from lenet.clock import StepClock
from lenet.config import TrainConfig
from lenet.errors import InputError
from search.errors import ClockError
from search.records.export import ExportDocument
from search.records.files import read_document
from search.space import Fixed, SearchSpace
from search.study.opening import stored_record

STUDY_PREFIX = "study:"
MAX_CLOCK_BATCH_SIZES = 16  # a wider integer range of batch sizes needs choices, or the measured clock


def clock_settings(space: SearchSpace) -> tuple[list[int], list[bool]]:
    """The batch sizes and augmentation settings a space's trials can train with."""
    values = []
    for name in ("batch_size", "augment"):
        param = space.params.get(name)
        if param is None:
            values.append([getattr(TrainConfig(), name)])
        elif isinstance(param, Fixed):
            values.append([param.value])
        elif isinstance(param, CategoricalDistribution):
            values.append(list(param.choices))
        elif param.high - param.low + 1 <= MAX_CLOCK_BATCH_SIZES:
            values.append(list(range(int(param.low), int(param.high) + 1)))
        else:
            raise ClockError(
                f"the calibrated clock prices each batch size, and {name} ranges over "
                f"{param.high - param.low + 1} values; give choices, or keep the measured clock",
                subject="space_file",
            )
    return values[0], values[1]


def load_clock(source: str, storage: BaseStorage) -> StepClock:
    """A step clock from `study:NAME` (a study in this storage), a step-clock JSON file, or an
    export (which carries its study's clock). Its refusals name no option: callers `blame` theirs."""
    if source.startswith(STUDY_PREFIX):
        record = stored_record(storage, source[len(STUDY_PREFIX) :])
        if record is None or record.clock_table is None:
            raise ClockError(f"{source}: no such study with a calibrated clock in this storage")
        return StepClock.from_dict(record.clock_table)
    document = read_document(Path(source))
    table = ExportDocument.from_dict(document, source).clock if ExportDocument.is_export(document) else document
    if not isinstance(table, dict):
        raise ClockError(f"{source} holds no step clock")
    try:
        return StepClock.from_dict(table)
    except InputError as exc:
        raise ClockError(f"{source}: {exc}") from None


def check_fits(clock: StepClock, space: SearchSpace, train_size: int, source: str | None) -> None:
    """Refuse a step clock that cannot price this study's trials."""
    batch_sizes, augments = clock_settings(space)
    where = f"the step clock in {source}" if source else "the step clock"
    missing = clock.covers(batch_sizes, augments)
    if missing:
        raise ClockError(f"{where} has no cost for {', '.join(missing)}, which the space uses", subject="clock_from")
    if clock.train_size != train_size:
        raise ClockError(
            f"{where} was measured for {clock.train_size} training images, this data has {train_size}",
            subject="clock_from",
        )
