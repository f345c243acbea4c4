"""The ``esper`` group, with commands loaded only when they are run.

``esper --help`` lists every command with its one-line help, core's and the plugins'. Importing
them all — the engine's modules, the contracts, every plugin — cost more than the interpreter and
the CLI's own dependencies together (``benchmarks/bench_cli.py``). So:

* core's commands are named here with their help, and imported when one of them is run (a test
  holds each listed help to the command's own docstring);
* plugins' commands are listed from a cache of the last listing, keyed by the installed
  ``esper`` entry points (each distribution and version), the plugin settings and Esper's
  version. Any command that loads the plugins rewrites it; a missing, stale or unreadable cache
  means loading the plugins, as without one. An editable plugin whose docstring changed shows
  its old line in ``--help`` until the next command runs; running a command always loads the
  plugin's current code.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from esper_core.cache import cache_dir
from esper_core.cli.errors import EsperGroup

CACHE_FILE = "plugin-commands.json"
CACHE_FORMAT = "esper-plugin-commands"
CACHE_VERSION = 1
MAX_CACHE_BYTES = 256 * 1024


def first_paragraph(command: click.Command) -> str:
    """What ``--help`` shortens into a command's line: its ``short_help``, else its help's first
    paragraph."""
    text = command.short_help or (command.help or "").split("\n\n")[0]
    return " ".join(text.split())


def listing_key(settings: Any) -> str:
    """The installed plugins and the settings that choose among them, hashed."""
    from esper_core import __version__
    from esper_core.plugins.manager import esper_entry_points

    identity = {
        "esper": __version__,
        "entry_points": [[ep.name, ep.value, dist, version] for ep, dist, version in esper_entry_points()],
        "autoload": settings.autoload,
        "allow": list(settings.allow) if settings.allow is not None else None,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def read_listing(path: Path, key: str) -> dict[str, str] | None:
    """The cached plugin commands (name → help paragraph), or None when there is no usable cache
    (a damaged one is said on stderr and then ignored)."""
    from esper_core.files import read_input_file

    if not path.exists():
        return None
    try:  # never opens a named pipe or a device put in its place
        data = json.loads(read_input_file(path, label="the cache", max_bytes=MAX_CACHE_BYTES,
                                          error=ValueError).decode("utf-8"))
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or data.get("version") != CACHE_VERSION:
            raise ValueError(f"not a version-{CACHE_VERSION} {CACHE_FORMAT} file")
        commands = data.get("commands")
        if not isinstance(commands, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in commands.items()):
            raise ValueError("'commands' must map command names to help text")
        problem = _listing_problem(commands)
        if problem:
            raise ValueError(problem)
    except (OSError, ValueError, RecursionError) as exc:
        click.echo(f"warning: ignoring the plugin command cache {str(path)!r}: {exc}", err=True)
        return None
    return commands if data.get("key") == key else None


#: what a plugin command's name may be, and at most how many a listing holds
_COMMAND_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
MAX_PLUGIN_COMMANDS = 256
MAX_HELP_CHARS = 1000


def _listing_problem(commands: dict[str, str]) -> str | None:
    """What no listing written by :meth:`LazyEsperGroup.ensure_plugin_commands` holds — too many
    commands, a name that is no command name, help text that is not one line of printable text
    (``first_paragraph`` joins it into one) — or None."""
    if len(commands) > MAX_PLUGIN_COMMANDS:
        return f"it lists {len(commands)} commands, more than {MAX_PLUGIN_COMMANDS}"
    for name, text in commands.items():
        if not _COMMAND_NAME.match(name):
            return f"{name[:40]!r} is not a command name"
        if len(text) > MAX_HELP_CHARS or not text.isprintable() or text != " ".join(text.split()):
            return f"the help of command {name!r} is not one line of text"
    return None


def write_listing(path: Path, key: str, commands: dict[str, str]) -> None:
    """Store the listing; a cache that cannot be written costs only a slower ``--help``."""
    from esper_core.files import write_json

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"format": CACHE_FORMAT, "version": CACHE_VERSION, "key": key, "commands": commands})
    except OSError:
        pass


class LazyEsperGroup(EsperGroup):
    """An :class:`EsperGroup` whose core commands import on use and whose plugin commands are
    added (by loading the plugins) only when one is needed."""

    def __init__(self, *args: Any, core: dict[str, tuple[str, str]], settings: Any,
                 add_plugin_commands: Callable[[click.Group], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._core = core
        self._settings = settings
        self._add_plugin_commands = add_plugin_commands
        self._plugins_added = False
        self._cached_listing: dict[str, str] | None = None  # read once per process

    # -- loading
    def ensure_plugin_commands(self) -> None:
        """Let the plugins add their commands (once), and record the listing for ``--help``."""
        if self._plugins_added:
            return
        self._plugins_added = True
        before = set(self.commands)
        self._add_plugin_commands(self)
        added = {name: first_paragraph(self.commands[name]) for name in sorted(set(self.commands) - before)
                 if name not in self._core}
        write_listing(self._cache_path(), listing_key(self._settings), added)

    def _cache_path(self) -> Path:
        return cache_dir() / CACHE_FILE

    def _core_command(self, name: str) -> click.Command:
        module, _, attribute = self._core[name][0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        self.add_command(command, name)
        return command

    # -- click's interface
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in self._core:
            return self._core_command(cmd_name)
        self.ensure_plugin_commands()
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self._core, *self.commands, *self._plugin_listing()})

    def _plugin_listing(self) -> dict[str, str]:
        if not self._plugins_added:
            if self._cached_listing is None:
                self._cached_listing = read_listing(self._cache_path(), listing_key(self._settings))
            if self._cached_listing is not None:
                return self._cached_listing
            self.ensure_plugin_commands()
        return {name: first_paragraph(cmd) for name, cmd in self.commands.items() if name not in self._core}

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own version resolves every command for its help line; this one reads the lines
        # from the core table, loaded commands and the cached plugin listing.
        plugin = self._plugin_listing()
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is not None:
                if command.hidden:
                    continue
                text = first_paragraph(command)
            else:
                text = self._core[name][1] if name in self._core else plugin.get(name, "")
            rows.append((name, text))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                # click shortens a help line the same way for a stand-in command of that help.
                formatter.write_dl([(name, click.Command(name, help=text).get_short_help_str(limit))
                                    for name, text in rows])
