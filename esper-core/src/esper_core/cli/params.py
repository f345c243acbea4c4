"""Click parameter types shared by every command, core's and the plugins'.

A path option given ``''`` would reach :class:`pathlib.Path` as ``Path('')``, which is the working
directory: ``--out ''`` wrote a dataset, a report or a plugin there, and ``--db ''`` listed it.
:class:`PathParam` refuses an empty or blank path before the command runs, and, where the path
names a file (``dir_okay=False``), one that names a directory by its spelling (``--out sub/``,
``--out .``).
Every ``click.Path`` parameter of a command added to the ``esper`` group, a plugin's too, is made
a :class:`PathParam` (:func:`checked_paths`), so a command declares its paths with plain
``click.Path`` and still gets the check.
"""

from __future__ import annotations

from typing import Any

import click

from esper_core.cli.errors import UsageFailure
from esper_core.files import path_names, path_problem, unusable_path_message


def param_label(param: click.Parameter | None) -> str:
    """How an error names a parameter: its longest flag (``--out``), or an argument's metavar
    (``RUN_DIR``; ``RUN`` for ``RUN RUN...``)."""
    if param is None:
        return "the path"
    if isinstance(param, click.Option) and param.opts:
        return max(param.opts, key=len)
    return param.human_readable_name.split()[0].rstrip(".")


def check_path_text(value: str, *, label: str, file: bool = False) -> None:
    """Refuse, with a one-line :class:`UsageFailure` naming ``label``: a path that is empty or
    blank (``Path('')`` is the working directory), one the OS refuses by its spelling (a NUL
    byte, a file or folder name longer than :data:`esper_core.files.NAME_MAX` bytes:
    :func:`esper_core.files.path_problem`), and for a ``file`` one spelled as a directory
    (``sub/``, ``.``, ``a/..``)."""
    if not value.strip():
        kind = "empty" if not value else "blank"
        raise UsageFailure(f"{label} {value!r} is {kind}; expected a path")
    why = path_problem(value)
    if why is not None:
        raise UsageFailure(unusable_path_message(label, value, why))
    if file and path_names(value)[-1] in ("", ".", ".."):
        raise UsageFailure(f"{label} {value!r} names a directory; expected a file path")


class PathParam(click.Path):
    """A :class:`click.Path` that refuses an empty or blank value, and (with ``dir_okay=False``)
    a value spelled as a directory (``sub/``, ``.``): see :func:`check_path_text`."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):  # a default may be a Path already
            check_path_text(value, label=param_label(param), file=not self.dir_okay)
        return super().convert(value, param, ctx)

    @classmethod
    def like(cls, path: click.Path) -> PathParam:
        """A PathParam with ``path``'s settings."""
        return cls(exists=path.exists, file_okay=path.file_okay, dir_okay=path.dir_okay, writable=path.writable,
                   readable=path.readable, resolve_path=path.resolve_path, allow_dash=path.allow_dash,
                   path_type=path.type, executable=path.executable)


def checked_paths(command: click.Command) -> click.Command:
    """Make every plain ``click.Path`` parameter of ``command`` (and of a group's sub-commands) a
    :class:`PathParam`; returns ``command``."""
    for param in command.params:
        if isinstance(param.type, click.Path) and not isinstance(param.type, PathParam):
            param.type = PathParam.like(param.type)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            checked_paths(sub)
    return command
