"""The export document: a trial as a config file that `train --config` retrains, with its
measures, its study's clock, its confirmation and where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lenet.config import TrainConfig
from search.errors import ConfigFileError
from search.records import keys as k
from search.records.stored import Stored, stored
from search.records.trial import TrialResult
from search.records.upgrade import upgrade_export

EXPORT_FORMAT = "lenet-search/export-v1"


@dataclass(frozen=True)
class ExportedStudy(Stored):
    """Where the trial came from. (Fields without a default are in every export; an older
    export read back has None where it lacks one.)"""

    name: str = stored(k.EXPORTED_STUDY_NAME)
    storage: str = stored(k.EXPORTED_STUDY_STORAGE)
    trial: int = stored(k.EXPORTED_STUDY_TRIAL)
    state: str = stored(k.EXPORTED_STUDY_STATE)
    target: float | None = stored(k.EXPORTED_STUDY_TARGET, None)
    objective: str | None = stored(k.EXPORTED_STUDY_OBJECTIVE, None)
    clock_kind: str | None = stored(k.EXPORTED_STUDY_CLOCK_KIND, None)


@dataclass(frozen=True)
class ConfirmedTimes(Stored):
    """A raced trial's times on the confirmation's seeds, in the study's clock. None stands
    for a seed that never reached the target within the epoch budget (JSON has no infinity)."""

    winner: bool = stored(k.CONFIRMED_WINNER)
    seeds: list[int] = stored(k.CONFIRMED_SEEDS)
    seconds: list[float | None] = stored(k.CONFIRMED_SECONDS)
    at_least: list[float | None] = stored(k.CONFIRMED_AT_LEAST)
    exact: bool = stored(k.CONFIRMED_EXACT)  # every time exact: `high` is exact too
    median_exact: bool = stored(k.CONFIRMED_MEDIAN_EXACT)  # the median is exact, else a lower bound
    median: float | None = stored(k.CONFIRMED_MEDIAN, None)
    low: float | None = stored(k.CONFIRMED_LOW, None)
    high: float | None = stored(k.CONFIRMED_HIGH, None)
    dropped: str | None = stored(k.CONFIRMED_DROPPED, None)


@dataclass(frozen=True)
class Provenance(Stored):
    trial_versions: dict[str, str] = stored(k.PROVENANCE_TRIAL_VERSIONS)
    exported: str = stored(k.PROVENANCE_EXPORTED)
    exported_with: dict[str, str] = stored(k.PROVENANCE_EXPORTED_WITH)
    seed: int | None = stored(k.PROVENANCE_SEED, None)
    device: str | None = stored(k.PROVENANCE_DEVICE, None)
    threads: int | None = stored(k.PROVENANCE_THREADS, None)
    data_checksum: str | None = stored(k.PROVENANCE_DATA_CHECKSUM, None)
    trial_finished: str | None = stored(k.PROVENANCE_TRIAL_FINISHED, None)


@dataclass(frozen=True)
class ExportDocument:
    config: TrainConfig
    metrics: TrialResult  # how the trial ended, under its trial attributes' keys
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
            metrics=TrialResult.from_dict(d.get(k.EXPORT_METRICS)),
            study=ExportedStudy.from_dict(d.get(k.EXPORT_STUDY)),
            clock=d.get(k.EXPORT_CLOCK) or None,
            confirmation=ConfirmedTimes.from_dict(confirmed) if confirmed else None,
            provenance=Provenance.from_dict(d.get(k.EXPORT_PROVENANCE)),
        )
