"""User-facing errors.

Anything a user can cause (missing file, bad format, wrong config key) raises :class:`UserError`
with one self-contained sentence: what file, what is wrong, what to do. The CLI prints it on one
line to stderr and exits with code 2, no traceback.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input from the user; message is a single line: which file, what is wrong, what to do."""

    def __init__(self, message: str, *, path: str | None = None):
        message = " ".join(str(message).split())  # always one line
        if path is not None and str(path) not in message:
            message = f"{path}: {message}"
        super().__init__(message)
        self.path = path


class DatasetNotFoundError(UserError):
    """A real dataset folder/file is missing or incomplete (message says where to get it)."""
