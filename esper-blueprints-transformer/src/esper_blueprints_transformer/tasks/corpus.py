"""Where the text comes from: the Python standard library's own sources, or a user's file.

Both return bytes; the tasks model them at byte level (vocabulary 256), so any UTF-8 text works
without a tokenizer and without a download.
"""

from __future__ import annotations

import codecs
import os
import sysconfig
from pathlib import Path

from esper_core.errors import DataError
from esper_core.sdk import check_input_file

#: Standard-library sources of the ``pytext`` corpus: prose-heavy modules present since Python
#: 3.8, read in this (sorted) order. Packages are named by their ``__init__.py``.
STDLIB_SOURCES: tuple[str, ...] = tuple(
    sorted(
        (
            "abc.py", "argparse.py", "bisect.py", "calendar.py", "collections/__init__.py",
            "contextlib.py", "copy.py", "csv.py", "dataclasses.py", "datetime.py", "difflib.py",
            "enum.py", "fnmatch.py", "fractions.py", "functools.py", "getopt.py", "gettext.py",
            "heapq.py", "inspect.py", "json/__init__.py", "json/decoder.py", "json/encoder.py",
            "numbers.py", "operator.py", "optparse.py", "pprint.py", "queue.py", "random.py",
            "sched.py", "shlex.py", "shutil.py", "statistics.py", "string.py", "textwrap.py",
            "threading.py", "tokenize.py", "typing.py", "weakref.py", "zipfile.py",
        )
    )
)


def stdlib_corpus(chars: int, *, root: Path | None = None) -> bytes:
    """The first ``chars`` characters of :data:`STDLIB_SOURCES` concatenated, UTF-8 encoded.

    ``root`` defaults to this interpreter's ``sysconfig`` stdlib directory. Modules missing from
    it are skipped (so the text depends on the Python version, never on chance); if none is
    there, e.g. an install that ships only bytecode, a :class:`DataError` says so.
    """
    root = Path(sysconfig.get_paths()["stdlib"]) if root is None else root
    parts: list[str] = []
    size = 0
    for name in STDLIB_SOURCES:
        path = root / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        parts.append(text)
        size += len(text)
        if size >= chars:
            break
    if not parts:
        raise DataError(
            f"no Python standard-library sources found under {root} (this install may ship only "
            "bytecode); use the 'textfile' task with a text file of your own instead"
        )
    return "\n".join(parts)[:chars].encode("utf-8")


#: The largest text file read whole (no ``chars`` option): a bigger one is refused rather than
#: loaded into memory (docs/security.md). With ``chars``, only the bytes those characters can
#: take are read, whatever the file's size.
MAX_TEXT_FILE_BYTES = 256 * 1024 * 1024


def read_text_file(path: str | Path, *, chars: int | None = None,
                   max_bytes: int = MAX_TEXT_FILE_BYTES) -> bytes:
    """The UTF-8 bytes of ``path`` (its first ``chars`` characters when given).

    Missing, unreadable, empty and binary files raise :class:`DataError`: a file counts as
    binary when it holds a NUL byte or is not valid UTF-8 (within what is read). Without
    ``chars``, a file over ``max_bytes`` is a DataError too.
    """
    path = Path(path).expanduser()
    check_input_file(path, label="text file", error=DataError)  # never opens a named pipe or a device
    try:
        with path.open("rb") as file:
            if chars is None:
                size = os.fstat(file.fileno()).st_size
                # One byte past the cap also catches a file that grew since fstat.
                data = b"" if size > max_bytes else file.read(max_bytes + 1)
                if max(size, len(data)) > max_bytes:
                    raise DataError(
                        f"text file {str(path)!r} is {max(size, len(data))} bytes, over the {max_bytes >> 20} MiB "
                        "read whole; use --task-option chars=N to read only its first N characters"
                    )
            else:
                at_most = 4 * chars  # UTF-8 takes at most 4 bytes per character
                data = file.read(at_most)
                at_end = len(data) < at_most
    except OSError as exc:
        raise DataError(f"text file {str(path)!r} cannot be read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise DataError(f"text file {str(path)!r} is empty; it needs some text to learn from")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError(
            f"text file {str(path)!r} looks binary (NUL byte at offset {nul}); give a UTF-8 text file"
        )
    try:
        if chars is None:
            data.decode("utf-8")
            return data
        # Not at the end of the file, the read may cut a character: the incremental decoder
        # keeps those last bytes back instead of calling them invalid.
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=at_end)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"text file {str(path)!r} is not valid UTF-8 (bad byte at offset {exc.start}); "
            "give a UTF-8 text file"
        ) from exc
    return text[:chars].encode("utf-8")


def split(data: bytes, val_fraction: float, test_fraction: float = 0.0) -> tuple[bytes, bytes, bytes]:
    """Training, validation and test bytes: the first ``1 − val_fraction − test_fraction`` of
    ``data``, then ``val_fraction``, then the held-out ``test_fraction`` at the end."""
    n = len(data)
    test_cut = n - int(n * test_fraction)
    val_cut = test_cut - int(n * val_fraction)
    return data[:val_cut], data[val_cut:test_cut], data[test_cut:]
