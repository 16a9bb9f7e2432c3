"""The refusals of the engine: input a user can fix (a bad path, value or file).

Everything that derives from `InputError` is a refusal: the command line turns it into a
one-line message with exit code 2. Any other exception is a bug.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class InputError(ValueError):
    """Input the user can fix; the message says what was wrong, in one line.

    `subject` names the request field the input came from (e.g. "target_text"), so that a
    front end can say which of its options to change; None when no one field is to blame.
    """

    def __init__(self, message: str, *, subject: str | None = None) -> None:
        super().__init__(message)
        self.subject = subject


class DataError(InputError):
    """The data at a path is missing, corrupt or laid out other than expected."""


class ConfigError(InputError):
    """A training config with a value out of range, an unknown field or a wrong type."""


class DiskFullError(InputError):
    """A write that failed because the device holding `path` is full (ENOSPC) or over its quota
    (EDQUOT); raised by `lenet.atomic.atomic_write`, which leaves no partial file behind."""

    def __init__(self, message: str, *, path: Path, subject: str | None = None) -> None:
        super().__init__(message, subject=subject)
        self.path = path


@contextmanager
def blame(subject: str) -> Iterator[None]:
    """Refusals raised inside name `subject` as the input they came from, unless they name one."""
    try:
        yield
    except InputError as exc:
        if exc.subject is None:
            exc.subject = subject
        raise
