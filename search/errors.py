"""The refusals of the search package: input a user can fix, one class per kind.

Each derives from `lenet.errors.InputError`, which the command line turns into one line with
exit code 2. Messages say what is wrong in the library's words; `subject` names the request
field to blame, so the command line can add which of its flags that is.
"""

from __future__ import annotations

from lenet.errors import InputError


class StorageError(InputError):
    """A storage URL that cannot be parsed, reached or opened."""


class StudyError(InputError):
    """A study that cannot be opened as asked (unknown name, mismatched target or space...)."""


class SpaceError(InputError):
    """A search-space file or setting that cannot describe a valid space."""


class ClockError(InputError):
    """A step clock that cannot be read, or that does not fit the study."""


class ConfigFileError(InputError):
    """A config file that cannot be read or does not describe a TrainConfig."""


class ExportError(InputError):
    """Nothing exportable: an empty study, no trial at the target, an unknown trial."""


class RequestError(InputError):
    """Options that contradict each other or are out of range."""
