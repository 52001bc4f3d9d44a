"""The ``eventvision`` command.

Commands are listed explicitly below and imported lazily (so ``eventvision info`` never imports
torch). A command module defines ``add_arguments(parser)`` and ``main(args) -> int`` and a one-line
``HELP``. ``(verb, task)`` entries take precedence over plain verbs, e.g. ``eval sap`` versus the
generic ``eval <task>``.

Errors: :class:`eventvision.errors.UserError` (and missing/unreadable files) print one line on
stderr and exit 2; argument errors do the same. Ctrl-C (SIGINT) exits 130 and SIGTERM 143, one line on
stderr, after every open atomic output removed its temporary file (``eventvision.utils.io.atomic_path``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import contextlib
import errno
import os
import signal
import sys

from eventvision.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError
from eventvision.utils.interrupts import signals_interrupt, take_last_signal

#: plain verbs: ``eventvision VERB ...``
COMMANDS: dict[str, str] = {
    "info": "eventvision.cli.info",
    "convert": "eventvision.cli.convert",
    "train": "eventvision.cli.train",
    "eval": "eventvision.cli.evaluate",
    "profile": "eventvision.cli.profile",
    "bench": "eventvision.cli.bench",
}

#: task verbs: ``eventvision VERB TASK ...``
TASK_COMMANDS: dict[tuple[str, str], str] = {
    ("run", "stereo"): "eventvision.cli.run_stereo",
    ("run", "detect3d"): "eventvision.cli.run_detect3d",
    ("search", "stereo"): "eventvision.cli.search_stereo",
    ("eval", "sap"): "eventvision.cli.eval_sap",
    ("bench", "voxel"): "eventvision.cli.bench_voxel",
    ("demo", "gesture"): "eventvision.cli.demo",
    ("demo", "stereo"): "eventvision.cli.demo",
}


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line on stderr and exits 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        command = self.prog.removeprefix("eventvision").strip()
        message = " ".join(message.split())
        self.exit(EXIT_USER_ERROR, f"eventvision: error: {command + ': ' if command else ''}{message} "
                                   f"(see {self.prog} --help)\n")


def _usage() -> str:
    lines = ["usage: eventvision COMMAND [TASK] [options]", "", "commands:"]
    for verb, module in COMMANDS.items():
        lines.append(f"  {verb:<18} {_help_of(module)}")
    for (verb, task), module in TASK_COMMANDS.items():
        lines.append(f"  {verb + ' ' + task:<18} {_help_of(module)}")
    lines += ["", "Run 'eventvision COMMAND [TASK] --help' for a command's options."]
    return "\n".join(lines)


def _help_of(module_name: str) -> str:
    # Read HELP without importing heavy modules: parse the first HELP = "..." line of the source.
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        return "(not installed in this build)"
    with open(spec.origin, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("HELP = "):
                return line.split("=", 1)[1].strip().strip("\"'")
    return ""


def _select(argv: list[str]) -> tuple[str, str, list[str], str | None]:
    verb = argv[0]
    if len(argv) > 1 and (verb, argv[1]) in TASK_COMMANDS:
        return TASK_COMMANDS[(verb, argv[1])], f"eventvision {verb} {argv[1]}", argv[2:], argv[1]
    if verb in COMMANDS:
        return COMMANDS[verb], f"eventvision {verb}", argv[1:], None
    tasks = sorted(t for v, t in TASK_COMMANDS if v == verb)
    if tasks:
        raise UserError(f"'eventvision {verb}' needs a task: one of {', '.join(tasks)}")
    raise UserError(f"unknown command '{verb}'; run 'eventvision --help' for the list")


def main(argv: list[str] | None = None) -> int:
    try:
        with signals_interrupt():
            return _main(argv)
    except KeyboardInterrupt:  # arrived outside the command (e.g. while restoring the handlers)
        return _interrupted()
    except BrokenPipeError:  # e.g. `eventvision --help | head`: stop quietly, like other CLI tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from eventvision import __version__
        print(f"eventvision {__version__}")
        return 0
    try:
        module_name, prog, rest, task = _select(argv)
        module = importlib.import_module(module_name)
        parser = OneLineArgumentParser(prog=prog, description=getattr(module, "HELP", None))
        module.add_arguments(parser)
        try:
            args = parser.parse_args(rest)
        except SystemExit as exc:  # --help (0) or a usage error (2, already printed as one line)
            return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USER_ERROR
        if task is not None:
            args.task = task
        return int(module.main(args) or 0)
    except UserError as exc:
        _fail(str(exc))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        name = exc.filename or ""
        _fail(f"{name}: {exc.strerror or exc}; check the path" if name else str(exc))
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}; free space or choose another output folder (partial outputs were "
              "removed)")
    except KeyboardInterrupt:
        return _interrupted()
    except MemoryError:  # sizes chosen by the user (batch, frame size, chunk) that this machine cannot hold
        _fail("out of memory; reduce the batch, frame or chunk sizes given, or free memory")
    return EXIT_USER_ERROR


def _interrupted() -> int:
    signum = take_last_signal()
    with contextlib.suppress(OSError, ValueError):
        print(f"eventvision: interrupted ({signum.name}); partial outputs were removed", file=sys.stderr)
    return EXIT_INTERRUPTED if signum == signal.SIGINT else 128 + int(signum)


def _fail(message: str) -> None:
    print(f"eventvision: error: {' '.join(message.split())}", file=sys.stderr)
    if os.environ.get("EVENTVISION_DEBUG"):
        import traceback
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
