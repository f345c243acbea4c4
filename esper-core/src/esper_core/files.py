"""Files written so that nothing already there is lost (atomic replacement, output paths proved
writable before any work starts), input files checked before they are opened (regular files
only, small formats capped in size), paths the OS would refuse by their spelling (a NUL byte, an
over-long name) named as such, small text formats (JSON, TOML) parsed with every failure in words,
and torch files read without running code."""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import re
import secrets
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from esper_core.errors import ConfigError

T = TypeVar("T")

#: Mode of every file we write, before the umask: what ``open(path, "w")`` gives, so a run
#: directory's files all share one mode (0644 under the usual umask 022).
FILE_MODE = 0o666


def _create_beside(path: Path) -> tuple[int, str]:
    """Create a new, uniquely named temporary file beside ``path`` with :data:`FILE_MODE` under
    the umask (``tempfile.mkstemp`` would make it 0600 whatever the umask, and the rename keeps
    that mode)."""
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           FILE_MODE), tmp
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary handle on a temporary file beside ``path``, synced and renamed over ``path``
    when the block ends; on any failure the temporary file is removed and ``path`` is untouched
    (a kill mid-write leaves the previous version intact). Missing folders above ``path`` are
    created, as :func:`check_writable_file` promised when it accepted them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """As :func:`atomic_file`, for writers that take a file name (``torch.onnx.export``): the
    block writes (and may read back and check) the temporary file whose path it is given; when
    the block ends the file is synced and renamed over ``path``. If the block raises, the
    temporary file is removed and ``path`` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_beside(path)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename over it."""
    with atomic_file(path) as handle:
        handle.write(text.encode("utf-8"))


def finite_json(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, ±inf: a diverged loss) replaced by ``None``:
    JSON has no such numbers, and the ``NaN`` Python's json module writes for them is not JSON
    that other readers (jq, browsers, strict parsers) accept."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite_json(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [finite_json(value) for value in data]
    return data


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON, atomically; a non-finite float is written as ``null``
    (:func:`finite_json`), so the file is always valid JSON."""
    write_atomic(path, json.dumps(finite_json(data), indent=2, default=str, allow_nan=False) + "\n")


def _probe(folder: Path, flag: str, path: Path) -> None:
    """Prove a file can be created in ``folder`` (permissions, read-only or special file
    systems), leaving nothing behind."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".esper-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{flag} {str(path)!r} is not writable: {exc.strerror or exc} "
                          f"(in {str(folder)!r})") from None


def _nearest_existing(path: Path, flag: str, target: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_symlink() and not candidate.exists():  # mkdir would fail with "File exists"
            raise ConfigError(f"{flag} {str(target)!r} cannot be created: {str(candidate)!r} is a broken "
                              f"symbolic link (to {os.readlink(candidate)!r}, which does not exist)")
        if candidate.exists():
            if not candidate.is_dir():
                raise ConfigError(f"{flag} {str(target)!r} cannot be created: {str(candidate)!r} is a file, "
                                  "not a directory")
            return candidate
    return Path.cwd()


def check_writable_dir(path: Path, *, flag: str = "--out") -> None:
    """Refuse, in one line and before any work, an output directory that cannot be written
    (or whose path the OS refuses, :func:`check_usable_path`); creates nothing (the command
    creates it when it writes)."""
    check_usable_path(path, label=flag)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} exists and is not a directory")
    _probe(_nearest_existing(path, flag, path), flag, path)


def check_writable_file(path: Path, *, flag: str = "--out") -> None:
    """As :func:`check_writable_dir`, for an output file (its folder must accept files). The
    CLI keeps its outputs off the files of run and dataset directories as well
    (:func:`esper_core.storage.rundir.check_output_file`; export, in ``export_model``)."""
    check_usable_path(path, label=flag)
    if path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is a directory; name a file")
    _probe(_nearest_existing(path.parent, flag, path), flag, path)


# -- paths the OS refuses by their spelling ------------------------------------------------------

#: The longest file or folder name, in bytes, of the common file systems (ext4, XFS, APFS, NTFS):
#: a longer one fails with "File name too long" wherever the path is first used.
NAME_MAX = 255

_SEPARATORS = tuple(sep for sep in (os.sep, os.altsep, "/") if sep)


def path_names(path: str) -> list[str]:
    """The file and folder names of ``path``, split at every separator (``'a/b/'``: a, b, '')."""
    parts = [path]
    for sep in _SEPARATORS:
        parts = [piece for part in parts for piece in part.split(sep)]
    return parts


def path_problem(path: Path | str) -> str | None:
    """Why the OS would refuse ``path`` by its spelling alone, in words that follow "is not a
    usable path: " (``it contains a NUL byte``; ``file name too long (a name of N bytes; at most
    255)`` for a file or folder name over :data:`NAME_MAX` bytes), or None. Unchecked, Python
    raises ``ValueError: embedded null byte`` for the one and ``OSError`` for the other, from
    whatever call uses the path first."""
    text = os.fsdecode(path)
    if "\0" in text:
        return "it contains a NUL byte"
    try:
        longest = max(len(os.fsencode(name)) for name in path_names(text))
    except UnicodeEncodeError:
        return "it is not text a file name can hold"
    if longest > NAME_MAX:
        return f"file name too long (a name of {longest} bytes; at most {NAME_MAX})"
    return None


def unusable_path_message(label: str, path: Path | str, why: str) -> str:
    """``<label> '<path>' is not a usable path: <why>`` (``why`` from :func:`path_problem`)."""
    return f"{label} {str(path)!r} is not a usable path: {why}"


def check_usable_path(path: Path | str, *, label: str, error: type[Exception] = ConfigError) -> None:
    """Raise ``error("<label> '<path>' is not a usable path: <why>")`` for a path the OS would
    refuse by its spelling (:func:`path_problem`)."""
    why = path_problem(path)
    if why is not None:
        raise error(unusable_path_message(label, path, why))


def _os_problem(exc: OSError) -> str:
    """An OSError on reading a path, in words that follow its name: a name the OS finds too long
    (a whole path over its limit) as :func:`path_problem` words it, else ``cannot be read: <why>``."""
    if exc.errno == errno.ENAMETOOLONG:
        return "is not a usable path: file name too long"
    return f"cannot be read: {exc.strerror or exc}"


# -- small text formats --------------------------------------------------------------------------


def too_long_integer(exc: BaseException) -> str | None:
    """``holds an integer too long to read (more than N digits)`` when ``exc`` is Python's refusal
    to convert an integer of more than ``sys.get_int_max_str_digits()`` digits (``json.loads``,
    ``tomllib.loads`` and ``int()`` raise it as a plain ValueError, which no decoder turns into
    its own error), else None."""
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return f"holds an integer too long to read (more than {sys.get_int_max_str_digits()} digits)"
    return None


def parse_text(data: bytes | str, loads: Callable[[str], T], *, where: str, kind: str,
               error: type[Exception] = ConfigError) -> T:
    """``loads(data)`` (``json.loads``, ``tomllib.loads``) for text a user gave, every failure an
    ``error`` naming ``where`` (``"config file 'x.toml'"``): bytes that are not UTF-8, text that
    is not valid ``kind``, nesting too deep for Python, and an integer with more digits than
    Python reads (:func:`too_long_integer`). A leading UTF-8 byte-order mark, which some editors
    (Windows Notepad) write, is skipped: RFC 8259 lets a JSON reader ignore it, and neither
    ``json.loads`` nor ``tomllib`` does."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return loads(text.removeprefix("\ufeff"))
    except UnicodeDecodeError as exc:
        raise error(f"{where} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise error(f"{where} is nested too deeply to read") from None
    except ValueError as exc:  # json's and tomllib's decode errors are ValueErrors, and so is the digit limit
        raise error(f"{where} {too_long_integer(exc) or f'is not valid {kind}: {exc}'}") from None


#: The largest small-text input read whole (a config TOML, a JSON header): far beyond any real
#: one, and a cap keeps a wrong path (a multi-GiB log) from filling memory.
MAX_TEXT_INPUT_BYTES = 16 * 1024 * 1024

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str | None:
    """Why a file of ``mode`` is no input file, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kind = next((words for test, words in _KINDS if test(mode)), "a special file")
    return f"is not a regular file ({kind})"


def _too_large(size: int, max_bytes: int | None) -> str | None:
    if max_bytes is not None and size > max_bytes:
        return f"is {size} bytes; at most {max_bytes} are read"
    return None


def input_file_problem(path: Path | str, *, max_bytes: int | None = None) -> str | None:
    """Why ``path`` cannot be read as an input file, in words that follow its name (``does not
    exist``, ``is not a regular file (a named pipe)``, ``is N bytes; at most M are read``), or
    None when it can.

    Only the file's metadata is looked at (``os.stat``, following links): a named pipe blocks
    the process that opens it until something writes to it, and a device such as ``/dev/zero``
    never ends, so neither may be opened at all. A path the OS refuses by its spelling (a NUL
    byte, an over-long name) ``is not a usable path: <why>`` (:func:`path_problem`). Every
    reader of a file a user names checks it here (or through :func:`check_input_file` /
    :func:`read_input_file`) before opening it.
    """
    why = path_problem(path)
    if why is not None:
        return f"is not a usable path: {why}"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return _os_problem(exc)
    return _not_regular(info.st_mode) or _too_large(info.st_size, max_bytes)


def check_input_file(path: Path | str, *, label: str, max_bytes: int | None = None,
                     error: type[Exception] = ConfigError) -> None:
    """Raise ``error("<label> '<path>' <why>")`` for a path :func:`input_file_problem` refuses."""
    problem = input_file_problem(path, max_bytes=max_bytes)
    if problem is not None:
        raise error(f"{label} {str(path)!r} {problem}")


def _open_regular(path: Path | str, max_bytes: int | None) -> BinaryIO | str:
    """``path`` opened for binary reading, or why it is not opened (:func:`input_file_problem`'s
    words). The file is checked before it is opened, then opened without blocking and checked
    again on the open handle, so a file swapped for a named pipe in between is refused too,
    never waited on."""
    problem = input_file_problem(path, max_bytes=max_bytes)
    if problem is not None:
        return problem
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        return _os_problem(exc)
    info = os.fstat(fd)
    problem = _not_regular(info.st_mode) or _too_large(info.st_size, max_bytes)
    if problem is not None:
        os.close(fd)
        return problem
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_input_file(path: Path | str, *, label: str, max_bytes: int = MAX_TEXT_INPUT_BYTES,
                    error: type[Exception] = ConfigError) -> bytes:
    """The bytes of ``path``, read whole, after :func:`input_file_problem`'s checks (made again
    on the open handle); at most ``max_bytes`` are read even from a file that grows (or, like
    those of ``/proc``, reports no size), and one larger is refused; else
    ``error("<label> '<path>' <why>")``."""
    opened = _open_regular(path, max_bytes)
    if isinstance(opened, str):
        raise error(f"{label} {str(path)!r} {opened}")
    with opened as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise error(f"{label} {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise error(f"{label} {str(path)!r} is over {max_bytes} bytes; at most {max_bytes} are read")
    return data


class UnreadableTorchFile(Exception):
    """A file :func:`load_torch_file` could not read; the message says why, in words."""


#: the first bytes of a zip archive (what torch.save writes) and of a pickle (its legacy format)
_ZIP_START, _PICKLE_START = b"PK\x03\x04", b"\x80"


def load_torch_file(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU: tensors and plain data only, never code.

    Raises :class:`UnreadableTorchFile` with the reason in words. torch's own errors do not say
    it for a file that is not one of its archives (a text file gives ``KeyError: '101'``, random
    bytes an ``IndexError``), so the reason is read from the file's first bytes. A path that is
    no regular file (a named pipe, a device) is refused before it is opened
    (:func:`input_file_problem`).
    """
    import torch

    handle = _open_regular(path, None)
    if isinstance(handle, str):
        raise UnreadableTorchFile(f"it {handle}")
    try:
        with handle:
            return torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises anything from KeyError to RuntimeError on a bad file
        raise UnreadableTorchFile(_why_unreadable(path, exc)) from None


def _why_unreadable(path: Path, exc: Exception) -> str:
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(_ZIP_START))
    except OSError as error:
        return f"it cannot be opened: {error.strerror or error}"
    if not start:
        return "it is empty"
    if not start.startswith((_ZIP_START, _PICKLE_START)):
        # torch reads such a file as a legacy pickle: its refusal would blame objects that are not there
        return "it is not a file torch.save writes"
    text = str(exc)
    detail = text.strip().splitlines()[0].split(". ")[0] if text.strip() else type(exc).__name__
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        named = re.search(r"Unsupported global: GLOBAL \S+", text)
        if named or re.search(r"unrecognized function|Unsupported class", text):
            return ("it holds Python objects other than tensors and plain data, which Esper never loads"
                    + (f" ({named.group(0)})" if named else ""))
        # Anything else the weights-only unpickler stops at (an unknown opcode, a broken stack) is
        # damage, not objects: a bit-flipped pickle reads as "Unsupported operand 142".
        why = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
        detail = why.group(1).strip() if why else detail
    return f"it is truncated or corrupt ({detail})"
