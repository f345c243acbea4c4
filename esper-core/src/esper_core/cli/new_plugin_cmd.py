"""``esper new-plugin``: write a ready-to-build plugin distribution (see docs/writing-plugins.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import click

from esper_core.cli.app import AppState
from esper_core.cli.params import PathParam
from esper_core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover - the scaffold is imported when the command runs
    from esper_core.scaffold.names import PluginNames
    from esper_core.scaffold.render import Kind


def _check_free(names: PluginNames, kinds: list[Kind], state: AppState) -> None:
    """Refuse names that would clash with what is installed: the import package or a component
    (a duplicate component name makes Esper drop the catalog with an error naming both)."""
    from esper_core.scaffold.render import component_names, registry_of

    if importlib.util.find_spec(names.package) is not None:
        raise ConfigError(f"a module named {names.package!r} is already importable; choose another plugin name")
    catalog = state.catalog
    for kind in kinds:
        registry = catalog.registry(registry_of(kind))
        name = component_names(names, kind)
        if name in registry:
            raise ConfigError(f"{registry.kind} {name!r} is already provided by "
                              f"{registry.provider(name).distribution}; choose another plugin name")


@click.command("new-plugin")
@click.argument("name")
@click.option("--blueprint", is_flag=True, help="Add a sample CNN blueprint.")
@click.option("--policy", is_flag=True, help="Add a sample policy (controller).")
@click.option("--sink", is_flag=True, help="Add a sample telemetry sink.")
@click.option("--reward-term", is_flag=True, help="Add a sample reward term.")
@click.option("--task", is_flag=True, help="Add a sample task: procedural data and a segmented cnn host.")
@click.option("--dir", "directory", type=PathParam(path_type=Path), default=None,
              help="Where to write the distribution (default: ./NAME); must be new or empty.")
@click.pass_obj
def new_plugin_command(state: AppState, name: str, blueprint: bool, policy: bool, sink: bool, reward_term: bool,
                       task: bool, directory: Path | None) -> None:
    """Write a plugin distribution NAME (e.g. esper-my-blocks): pyproject.toml with the entry
    point, a sample component of each chosen kind, README and
    conformance tests that pass as generated. With no kind chosen it writes a blueprint, a policy,
    a sink and a reward term; a task only with --task."""
    from esper_core import __version__
    from esper_core.files import check_writable_dir
    from esper_core.scaffold.names import PluginNames
    from esper_core.scaffold.render import DEFAULT_KINDS, Kind, render_plugin, write_plugin

    names = PluginNames.from_distribution(name)
    flags = {Kind.BLUEPRINT: blueprint, Kind.POLICY: policy, Kind.SINK: sink, Kind.REWARD_TERM: reward_term,
             Kind.TASK: task}
    kinds = [kind for kind, on in flags.items() if on] or list(DEFAULT_KINDS)
    target = directory if directory is not None else Path(names.distribution)
    check_writable_dir(target, flag="--dir")
    _check_free(names, kinds, state)
    files = render_plugin(names, kinds, core_version=__version__)
    write_plugin(target, files)
    click.echo(f"wrote {names.distribution} ({', '.join(k.value for k in kinds)}) to {target}")
    for relative in sorted(files):
        click.echo(f"  {relative}")
    click.echo(f"next: cd {target} && pip install -e . && pytest && esper plugins")
