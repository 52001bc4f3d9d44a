"""Typed errors of the library.

Anything a user can cause (a missing or malformed file, a bad config value, an output that would
overwrite an input) raises a subclass of :class:`UserError` with one self-contained sentence: which
file or key, what is wrong, what to do. The library never names CLI flags; the CLI
(``eventvision.cli.main``) turns every :class:`UserError` into one line on stderr and exit code 2.

Pick the most specific class:

========================== =====================================================================
``FileFormatError``        a file's content is invalid (bad header, field out of range, NaN, ...)
``ConfigError``            a config key or value is invalid (unknown key, wrong type, out of range)
``InvalidValueError``      an argument passed to a library function is out of its valid range
``OutputPathError``        an output path is unusable (would overwrite an input, below a file, ...)
``CheckpointError``        a checkpoint cannot be used (wrong task, malformed config, missing keys)
``DatasetNotFoundError``   a real dataset folder/file is missing (message says where to get it)
========================== =====================================================================
"""

from __future__ import annotations

from typing import Callable, NoReturn

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Base class: bad input from the user; the message is one line (file/key, problem, remedy)."""

    def __init__(self, message: str, *, path: str | None = None):
        message = " ".join(str(message).split())  # always one line
        if path is not None and str(path) not in message:
            message = f"{path}: {message}"
        super().__init__(message)
        self.path = path


class FileFormatError(UserError):
    """A file's content is invalid: malformed header or metadata, a field out of range or non-finite."""


class ConfigError(UserError):
    """A config key or value is invalid (the message names the key)."""


class InvalidValueError(UserError):
    """A value given to a library function is outside its valid range (the message names it)."""


class OutputPathError(UserError):
    """An output path cannot be used: it is an input, lies below a file, or is not writable."""


class CheckpointError(UserError):
    """A checkpoint cannot be used: another task, a malformed config, missing entries."""


class DatasetNotFoundError(UserError):
    """A real dataset folder/file is missing or incomplete (message says where to get it)."""


def exit_with(main: Callable[[], int]) -> NoReturn:
    """Exit with the code ``main()`` returns; a :class:`UserError` it raises is printed as its one line on stderr
    and exits with :data:`EXIT_USER_ERROR`, like the CLI. The entry point of the stand-alone ``benchmarks/``
    scripts."""
    import sys

    try:
        code = main()
    except UserError as exc:
        print(exc, file=sys.stderr)
        code = EXIT_USER_ERROR
    raise SystemExit(code)
