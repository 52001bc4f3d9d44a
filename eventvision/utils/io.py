"""Outputs that never destroy an input and are never half-written.

* :func:`refuse_overwrite_input` is the one output-path guard: every command calls it for every output
  against every input it opened, before it writes anything.
* :func:`atomic_path` writes to a temporary sibling and renames it into place. The temporary name carries
  the writer's host and pid (``.NAME.<host>-<pid>-<random>.evtmp<suffix>``) so a later run recognises
  leftovers of a killed process (SIGKILL, power loss) and removes them (:func:`sweep_stale_temps`).
  The file gets the mode the umask gives (0644 under umask 022), like a file written in place.
* An interrupt (Ctrl-C) received while an :func:`atomic_path` is open always cancels it, even when a
  library callback swallowed the ``KeyboardInterrupt`` ("Exception ignored in ..."): the CLI counts
  signals with :func:`note_interrupt` and the rename is refused when the count changed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Iterable, Iterator

from eventvision.errors import FileFormatError, OutputPathError

_TEMP_MARK = ".evtmp"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]+\.evtmp"
                      r"(?P<suffix>.*)$")
_interrupts = [0]
_swept: set[str] = set()  # folders swept by this process (one PNG per window must not list them each time)


def note_interrupt() -> None:
    """Record that SIGINT/SIGTERM arrived (called by the CLI's signal handler before it raises)."""
    _interrupts[0] += 1


def interrupt_count() -> int:
    return _interrupts[0]


@functools.lru_cache(maxsize=1)
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname().split(".")[0])[:32] or "host"


def _flatten(paths: Iterable) -> Iterator[str | os.PathLike]:
    for p in paths:
        if p is None:
            continue
        if isinstance(p, (list, tuple, set, frozenset)):
            yield from _flatten(p)
        else:
            yield p


def _absolute(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _check_parents(output: Path, shown: str) -> None:
    """An output below an existing file (``in.h5/out.json``) or in a read-only folder can never be created."""
    for parent in (output.parent, *output.parent.parents):
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputPathError(f"{shown}: output lies below {parent}, which is not a folder; "
                                      "choose an output path in a folder", path=shown)
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputPathError(f"{shown}: the folder {parent} is not writable; choose an output path "
                                      "in a writable folder", path=shown)
            return


def refuse_overwrite_input(output: str | os.PathLike | None, *inputs) -> None:
    """Raise :class:`OutputPathError` when writing ``output`` could destroy or clash with an input.

    Refused: ``output`` is an input (same path, a symlink to it, or a hard link of it), ``output`` lies
    inside an input folder or is that folder, or ``output`` lies below an existing file. ``inputs`` may
    hold ``None`` (an option not given), paths that do not exist (nothing to protect) and lists of paths.
    Call it before opening anything for writing; it does not write.
    """
    if output is None:
        return
    shown = os.fspath(output)
    out_abs = _absolute(output)
    _check_parents(out_abs, shown)
    out_real = Path(os.path.realpath(out_abs))
    out_exists = out_abs.exists()
    for inp in _flatten(inputs):
        inp_abs = _absolute(inp)
        if not inp_abs.exists():
            continue
        inp_real = Path(os.path.realpath(inp_abs))
        same = out_real == inp_real or out_abs == inp_abs
        if not same and out_exists:
            with contextlib.suppress(OSError):
                same = os.path.samefile(out_abs, inp_abs)  # hard link
        if same:
            kind = "folder" if inp_real.is_dir() else "file"
            raise OutputPathError(f"{shown}: output is the input {kind} {os.fspath(inp)}; writing it would "
                                  "destroy the input; choose a different output path", path=shown)
        if inp_real.is_dir() and (out_real.is_relative_to(inp_real) or out_abs.is_relative_to(inp_abs)):
            raise OutputPathError(f"{shown}: output lies inside the input folder {os.fspath(inp)}; choose an "
                                  "output path outside it", path=shown)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's process
        return True
    return True


def sweep_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove temporaries of :func:`atomic_path` in ``folder`` left by a process of this host that is gone.

    Returns the removed paths. Files of other hosts (a shared network folder) and of live processes are kept.
    """
    removed: list[Path] = []
    host = _host()
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if _TEMP_MARK not in name:
            continue
        m = _TEMP_RE.match(name)
        if m is None or m["host"] != host or _pid_alive(int(m["pid"])):
            continue
        path = Path(folder) / name
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed.append(path)
    return removed


def _temp_name(final_path: Path, suffix: str) -> Path:
    """A fresh temporary sibling name of ``final_path`` (host, pid, random tag; see the module doc)."""
    tag = f"{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
    return final_path.with_name(f".{final_path.name}.{tag}{_TEMP_MARK}{suffix}")


def _create_exclusive(tmp: Path, final_path: Path) -> bool:
    """Create the empty file ``tmp`` with the mode the umask gives; False if the name is taken."""
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode = 0666 & ~umask
    except FileExistsError:
        return False
    except OSError as exc:
        raise OutputPathError(f"{final_path}: cannot write in {final_path.parent} ({exc.strerror}); "
                              "choose a writable output folder", path=str(final_path)) from None
    os.close(fd)
    return True


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``final_path``; on success rename it into place, on error delete it.

    The folder is created if needed; stale temporaries of dead processes in it are swept first. An
    interrupt noted while the block ran cancels the rename (raises ``KeyboardInterrupt``).

    >>> with atomic_path("out.h5") as tmp:
    ...     write_file(tmp)
    """
    final_path = Path(final_path)
    shown = os.fspath(final_path)
    _check_parents(_absolute(final_path), shown)
    if final_path.is_dir():
        raise OutputPathError(f"{shown}: is a folder; give a file path for this output", path=shown)
    try:
        final_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"{shown}: cannot create the folder {final_path.parent} ({exc.strerror}); "
                              "choose another output path", path=shown) from None
    folder = os.path.abspath(final_path.parent)
    if folder not in _swept:
        _swept.add(folder)
        sweep_stale_temps(folder)
    suffix = final_path.suffix if suffix is None else suffix
    interrupts = interrupt_count()
    tmp = None
    try:
        for _ in range(100):
            # named before it exists: an interrupt at any instant from here on (even inside os.open) removes it
            tmp = _temp_name(final_path, suffix)
            if _create_exclusive(tmp, final_path):
                break
        else:
            tmp = None   # every name was taken by others: remove none of them
            raise OutputPathError(f"{shown}: cannot create a temporary file next to it", path=shown)
        yield tmp
        if interrupt_count() != interrupts:
            raise KeyboardInterrupt  # a callback swallowed the signal's exception: never commit
        if not tmp.exists():
            raise OutputPathError(f"{shown}: the writer produced no file", path=shown)
        os.replace(tmp, final_path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise


def atomic_write_bytes(final_path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(final_path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(final_path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(final_path, text.encode("utf-8"))


# ------------------------------------------------------------------------------------------- text inputs
#: longest accepted line of a text input (labels, results, calibration, emission, csv); longer is corruption
MAX_TEXT_LINE_BYTES = 1 << 16
#: largest text input read whole (configs, JSON emission/latency files)
MAX_TEXT_FILE_BYTES = 256 << 20


def _decode(raw: bytes, path, lineno: int | None) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"{path}:{lineno}" if lineno is not None else str(path)
        raise FileFormatError(f"{where}: byte {exc.start} is not UTF-8 ({raw[exc.start:exc.start + 1]!r}); "
                              "save the file as UTF-8 text", path=str(path)) from None


def text_lines(path: str | os.PathLike, *, max_line_bytes: int = MAX_TEXT_LINE_BYTES) -> Iterator[str]:
    """Lines of a UTF-8 text file (without the newline), read in bounded memory.

    A line longer than ``max_line_bytes`` or bytes that are not UTF-8 raise :class:`FileFormatError`
    naming the file and line (a binary file given as text never makes us hold it whole).
    """
    with open(path, "rb") as fh:
        lineno = 0
        while True:
            raw = fh.readline(max_line_bytes + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > max_line_bytes:
                raise FileFormatError(f"{path}:{lineno}: line longer than {max_line_bytes} bytes; not a "
                                      "text file of this kind", path=str(path))
            yield _decode(raw, path, lineno).rstrip("\r\n")


def read_text(path: str | os.PathLike, *, max_bytes: int = MAX_TEXT_FILE_BYTES) -> str:
    """A whole UTF-8 text file, its size checked before reading (:class:`FileFormatError` if too big or
    not UTF-8)."""
    size = os.stat(path).st_size
    if size > max_bytes:
        raise FileFormatError(f"{path}: {size} bytes, more than the {max_bytes} a text input of this kind "
                              "may hold; check the path", path=str(path))
    with open(path, "rb") as fh:
        return _decode(fh.read(max_bytes + 1), path, None)
