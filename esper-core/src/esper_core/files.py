"""Files written so that nothing already there is lost (atomic replacement, output paths proved
writable before any work starts), and torch files read without running code."""

from __future__ import annotations

import json
import os
import pickle
import re
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from esper_core.errors import ConfigError

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


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


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
        if candidate.exists():
            if not candidate.is_dir():
                raise ConfigError(f"{flag} {str(target)!r} cannot be created: {str(candidate)!r} is a file, "
                                  "not a directory")
            return candidate
    return Path.cwd()


def check_writable_dir(path: Path, *, flag: str = "--out") -> None:
    """Refuse, in one line and before any work, an output directory that cannot be written;
    creates nothing (the command creates it when it writes)."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} exists and is not a directory")
    _probe(_nearest_existing(path, flag, path), flag, path)


def check_writable_file(path: Path, *, flag: str = "--out") -> None:
    """As :func:`check_writable_dir`, for an output file (its folder must accept files). The
    CLI keeps its outputs off the files of run and dataset directories as well
    (:func:`esper_core.storage.rundir.check_output_file`; export, in ``export_model``)."""
    if path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is a directory; name a file")
    _probe(_nearest_existing(path.parent, flag, path), flag, path)


class UnreadableTorchFile(Exception):
    """A file :func:`load_torch_file` could not read; the message says why, in words."""


#: the first bytes of a zip archive (what torch.save writes) and of a pickle (its legacy format)
_ZIP_START, _PICKLE_START = b"PK\x03\x04", b"\x80"


def load_torch_file(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU: tensors and plain data only, never code.

    Raises :class:`UnreadableTorchFile` with the reason in words. torch's own errors do not say
    it for a file that is not one of its archives (a text file gives ``KeyError: '101'``, random
    bytes an ``IndexError``), so the reason is read from the file's first bytes.
    """
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
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
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        named = re.search(r"Unsupported global: GLOBAL \S+", text)
        return ("it holds Python objects other than tensors and plain data, which Esper never loads"
                + (f" ({named.group(0)})" if named else ""))
    detail = text.strip().splitlines()[0].split(". ")[0] if text.strip() else type(exc).__name__
    return f"it is truncated or corrupt ({detail})"
