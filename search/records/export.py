"""The export document: a trial as a config file that `train --config` retrains, with its
measures, its study's clock, its confirmation and where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from lenet.config import TrainConfig
from search.errors import ConfigFileError
from search.records import keys as k
from search.records.upgrade import upgrade_export

EXPORT_FORMAT = "lenet-search/export-v1"


class _Section:
    """A dataclass stored as a JSON object: `_KEYS` maps each field to its stored key."""

    _KEYS: ClassVar[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {self._KEYS[f.name]: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None):  # noqa: ANN206  (the subclass)
        d = d if isinstance(d, Mapping) else {}
        return cls(**{f.name: d.get(cls._KEYS[f.name]) for f in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True)
class ExportedMetrics(_Section):
    clock_seconds_to_target: float | None = None
    measured_seconds_to_target: float | None = None
    epochs_to_target: float | None = None
    images_to_target: int | None = None
    best_val_accuracy: float | None = None
    measured_seconds: float | None = None  # training, evaluation excluded
    outcome: str | None = None
    reason: str | None = None

    _KEYS: ClassVar[dict[str, str]] = dict(
        clock_seconds_to_target=k.METRIC_SECONDS_TO_TARGET,
        measured_seconds_to_target=k.METRIC_MEASURED_SECONDS_TO_TARGET,
        epochs_to_target=k.METRIC_EPOCHS_TO_TARGET,
        images_to_target=k.METRIC_IMAGES_TO_TARGET,
        best_val_accuracy=k.METRIC_BEST_VAL_ACCURACY,
        measured_seconds=k.METRIC_TRAIN_SECONDS,
        outcome=k.METRIC_OUTCOME,
        reason=k.METRIC_REASON,
    )


@dataclass(frozen=True)
class ExportedStudy(_Section):
    name: str | None = None
    storage: str | None = None
    trial: int | None = None
    state: str | None = None
    target: float | None = None
    objective: str | None = None
    clock_kind: str | None = None

    _KEYS: ClassVar[dict[str, str]] = dict(
        name=k.EXPORTED_STUDY_NAME,
        storage=k.EXPORTED_STUDY_STORAGE,
        trial=k.EXPORTED_STUDY_TRIAL,
        state=k.EXPORTED_STUDY_STATE,
        target=k.EXPORTED_STUDY_TARGET,
        objective=k.EXPORTED_STUDY_OBJECTIVE,
        clock_kind=k.EXPORTED_STUDY_CLOCK_KIND,
    )


@dataclass(frozen=True)
class ConfirmedTimes(_Section):
    """A raced trial's times on the confirmation's seeds, in the study's clock. None stands
    for a seed that never reached the target within the epoch budget (JSON has no infinity)."""

    winner: bool | None = None
    seeds: list[int] | None = None
    seconds: list[float | None] | None = None
    at_least: list[float | None] | None = None
    median: float | None = None
    low: float | None = None
    high: float | None = None
    exact: bool | None = None  # every time exact: `high` is exact too
    median_exact: bool | None = None  # the median is exact, else a lower bound
    dropped: str | None = None

    _KEYS: ClassVar[dict[str, str]] = dict(
        winner=k.CONFIRMED_WINNER,
        seeds=k.CONFIRMED_SEEDS,
        seconds=k.CONFIRMED_SECONDS,
        at_least=k.CONFIRMED_AT_LEAST,
        median=k.CONFIRMED_MEDIAN,
        low=k.CONFIRMED_LOW,
        high=k.CONFIRMED_HIGH,
        exact=k.CONFIRMED_EXACT,
        median_exact=k.CONFIRMED_MEDIAN_EXACT,
        dropped=k.CONFIRMED_DROPPED,
    )


@dataclass(frozen=True)
class Provenance(_Section):
    seed: int | None = None
    device: str | None = None
    threads: int | None = None
    data_checksum: str | None = None
    trial_versions: dict[str, str] | None = None
    trial_finished: str | None = None
    exported: str | None = None
    exported_with: dict[str, str] | None = None

    _KEYS: ClassVar[dict[str, str]] = dict(
        seed=k.PROVENANCE_SEED,
        device=k.PROVENANCE_DEVICE,
        threads=k.PROVENANCE_THREADS,
        data_checksum=k.PROVENANCE_DATA_CHECKSUM,
        trial_versions=k.PROVENANCE_TRIAL_VERSIONS,
        trial_finished=k.PROVENANCE_TRIAL_FINISHED,
        exported=k.PROVENANCE_EXPORTED,
        exported_with=k.PROVENANCE_EXPORTED_WITH,
    )


@dataclass(frozen=True)
class ExportDocument:
    config: TrainConfig
    metrics: ExportedMetrics
    study: ExportedStudy
    clock: dict[str, Any] | None  # lenet.clock.StepClock.to_dict(): a retrain prices its steps in it
    confirmation: ConfirmedTimes | None
    provenance: Provenance

    def to_dict(self) -> dict[str, Any]:
        return {
            k.EXPORT_FORMAT_KEY: EXPORT_FORMAT,
            k.EXPORT_CONFIG: self.config.to_dict(),
            k.EXPORT_METRICS: self.metrics.to_dict(),
            k.EXPORT_STUDY: self.study.to_dict(),
            k.EXPORT_CLOCK: self.clock,
            k.EXPORT_CONFIRMATION: self.confirmation.to_dict() if self.confirmation else None,
            k.EXPORT_PROVENANCE: self.provenance.to_dict(),
        }

    @staticmethod
    def is_export(document: Mapping[str, Any]) -> bool:
        """Whether a config file holds an export (else it is a bare mapping of TrainConfig fields)."""
        return isinstance(document.get(k.EXPORT_CONFIG), dict)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], where: str) -> ExportDocument:
        """Read an export (of any version); it must name every TrainConfig field, so that what
        is retrained is what was found."""
        d = upgrade_export(document)
        try:
            config = TrainConfig.from_dict(d[k.EXPORT_CONFIG], require_all=True)
        except (TypeError, ValueError) as exc:
            raise ConfigFileError(f"config file {where}: {exc}") from exc
        confirmed = d.get(k.EXPORT_CONFIRMATION)
        return cls(
            config=config,
            metrics=ExportedMetrics.from_dict(d.get(k.EXPORT_METRICS)),
            study=ExportedStudy.from_dict(d.get(k.EXPORT_STUDY)),
            clock=d.get(k.EXPORT_CLOCK) or None,
            confirmation=ConfirmedTimes.from_dict(confirmed) if confirmed else None,
            provenance=Provenance.from_dict(d.get(k.EXPORT_PROVENANCE)),
        )
