"""Dataclasses stored as mappings: each field declares the key it is stored under."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, field, fields
from typing import Any, TypeVar

S = TypeVar("S", bound="Stored")


def stored(key: str, default: Any = MISSING) -> Any:
    """A field stored under `key` (from search/records/keys.py)."""
    return field(metadata={"key": key}) if default is MISSING else field(default=default, metadata={"key": key})


def _default(f: Field[Any]) -> Any:
    return None if f.default is MISSING else f.default


class Stored:
    """A dataclass whose fields are all `stored()`: written and read by their keys."""

    def to_dict(self) -> dict[str, Any]:
        return {f.metadata["key"]: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def values(cls, stored_values: Mapping[str, Any] | None) -> dict[str, Any]:
        """The fields' values as stored (absent ones at their defaults, or None)."""
        d = stored_values if isinstance(stored_values, Mapping) else {}
        return {f.name: d.get(f.metadata["key"], _default(f)) for f in fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[S], stored_values: Mapping[str, Any] | None) -> S:
        return cls(**cls.values(stored_values))
