"""Reading and writing the JSON and TOML documents lenet-search keeps in files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomllib

from lenet.atomic import atomic_write
from search.errors import ConfigFileError


def read_document(path: Path) -> dict[str, Any]:
    """A JSON (or, by its suffix, TOML) object from `path`; a ConfigFileError naming the file otherwise."""
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


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write atomically: an interrupted write never leaves half a file."""
    text = json.dumps(document, indent=2) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))
