"""Reading a training config from a file: an exported trial, or a bare TrainConfig mapping."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lenet.errors import InputError
from lenet.train import TrainConfig


class ConfigFileError(InputError):
    """A config file that cannot be read or does not describe a TrainConfig."""


@dataclass(frozen=True)
class LoadedConfig:
    config: TrainConfig
    target: float | None  # the study's target, when the file is an export
    document: dict[str, Any]  # the whole file, for provenance


def read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        doc = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ConfigFileError(f"config file {path} is not valid {kind}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigFileError(f"config file {path} must hold a table/object, not {type(doc).__name__}")
    return doc


def load_config_file(path: Path) -> LoadedConfig:
    """An export ({"config": {...}, "metrics": {...}, ...}) or a bare mapping of TrainConfig
    fields. An export must name every field, so that what is retrained is what was found."""
    doc = read_document(path)
    is_export = "config" in doc and isinstance(doc["config"], dict)
    values = doc["config"] if is_export else doc
    try:
        config = TrainConfig.from_dict(values, require_all=is_export)
    except (TypeError, ValueError) as exc:
        raise ConfigFileError(f"config file {path}: {exc}") from exc
    target = doc.get("study", {}).get("target") if is_export else None
    return LoadedConfig(config=config, target=target, document=doc)
