"""The one error class for input a user can fix (a bad path, value or file).

Everything that derives from `InputError` is a refusal: the command line turns it into a
one-line message with exit code 2. Any other exception is a bug.
"""

from __future__ import annotations


class InputError(ValueError):
    """Input the user can fix; the message says what was wrong, in one line."""
