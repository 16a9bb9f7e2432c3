"""Where a result came from: library versions, machine and time, recorded with every result."""

from __future__ import annotations

import platform
from datetime import datetime
from importlib import metadata


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("lenet-search", "torch", "torchvision", "optuna", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def now_text() -> str:
    """A human-readable local timestamp with its offset, e.g. 2026-11-24 17:45:12 +0000."""
    return datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def stamp() -> str:
    """A timestamp for file and folder names, e.g. 20261124-174512."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")
