"""Reading a training config from a file: an exported trial, or a bare TrainConfig mapping."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lenet.config import TrainConfig
from search.errors import ConfigFileError
from search.records.export import ExportDocument
from search.records.files import read_document


@dataclass(frozen=True)
class LoadedConfig:
    config: TrainConfig
    export: ExportDocument | None  # None: the file is a bare mapping of TrainConfig fields

    @property
    def target(self) -> float | None:
        """The study's target, when the file is an export."""
        return self.export.study.target if self.export is not None else None


def load_config_file(path: Path) -> LoadedConfig:
    """An export, which must name every field so that what is retrained is what was found, or
    a bare mapping of TrainConfig fields."""
    document = read_document(path)
    if ExportDocument.is_export(document):
        export = ExportDocument.from_dict(document, str(path))
        return LoadedConfig(export.config, export)
    try:
        return LoadedConfig(TrainConfig.from_dict(document), None)
    except (TypeError, ValueError) as exc:
        raise ConfigFileError(f"config file {path}: {exc}") from exc
