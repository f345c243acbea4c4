"""The ``esper`` command group.

Importing this module must stay cheap: ``esper --help`` and ``esper plugins`` never import
torch (a test checks ``sys.modules``). Commands that train import their engine lazily.
"""

from __future__ import annotations

import sys

import click

from esper_core.cli.errors import UsageFailure
from esper_core.cli.lazy_group import LazyEsperGroup
from esper_core.errors import EsperError
from esper_core.log_config import LEVELS, configure_logging, deferred_logger
from esper_core.plugins.manager import PluginSettings

#: Core's commands: name → (where the command is, its help's first paragraph). Imported only
#: when run, so ``esper --help`` loads none of them; ``test_cli`` holds each line to the
#: command's own docstring.
CORE_COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("esper_core.cli.plugins_cmd:plugins_command",
                "List plugins: distribution, version, hooks, components contributed, failures."),
    "blueprints": ("esper_core.cli.blueprints_cmd:blueprints_command",
                   "Print the blueprint catalog: index, name, topology, parameters at a slot width, "
                   "anti-pattern, provider."),
    "run": ("esper_core.cli.run_cmd:run_command",
            "Run episodes: train a host for E epochs while the controller grows it."),
    "evaluate": ("esper_core.cli.evaluate_cmd:evaluate_command",
                 "Run a trained policy and baselines on the same held-out episodes; print mean ± std."),
    "export": ("esper_core.cli.export_cmd:export_command",
               "Write RUN_DIR's final model with its fossilized seeds folded in and no slot machinery, "
               "and beside it FILE.json: the input shape, dtype, normalisation and class names to feed it."),
    "discover": ("esper_core.cli.discover_cmd:discover_command",
                 "Search for blueprints with the Crucible; print best and mean fitness per step."),
    "new-plugin": ("esper_core.cli.new_plugin_cmd:new_plugin_command",
                   "Write a plugin distribution NAME (e.g. esper-my-blocks): pyproject.toml with the entry "
                   "point, a sample component of each chosen kind, README and conformance tests that pass as "
                   "generated. With no kind chosen it writes a blueprint, a policy, a sink and a reward term; "
                   "a task only with --task."),
}

logger = deferred_logger(__name__)


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from esper_core.plugins.manager import installed_versions

    for name, version in installed_versions():
        click.echo(f"{name} {version}")
    ctx.exit()


def build_cli(settings: PluginSettings | None = None) -> click.Group:
    """Build the command group; plugins add their commands when one is needed (see
    :mod:`esper_core.cli.lazy_group`)."""
    from esper_core.cli.app import AppState

    state = AppState(settings or PluginSettings.from_env())

    def add_plugin_commands(group: click.Group) -> None:
        from esper_core.plugins.manager import add_plugin_commands

        add_plugin_commands(state.plugins, group)

    @click.group(cls=LazyEsperGroup, core=CORE_COMMANDS, settings=state.settings,
                 add_plugin_commands=add_plugin_commands,
                 context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--version", is_flag=True, expose_value=False, is_eager=True,
                  callback=_print_versions, help="Show the versions of every Esper distribution.")
    @click.option("--log-level", type=click.Choice(LEVELS), default="info", show_default=True)
    @click.option("--log-format", type=click.Choice(["auto", "console", "json"]), default="auto",
                  show_default=True, help="auto: console on a terminal, JSON lines otherwise.")
    @click.option("--strict-plugins", is_flag=True, envvar="ESPER_STRICT_PLUGINS",
                  help="Fail if any plugin fails to load (also ESPER_STRICT_PLUGINS=1).")
    @click.pass_context
    def cli(ctx: click.Context, log_level: str, log_format: str, strict_plugins: bool) -> None:
        """Esper: grow neural networks while they train."""
        configure_logging(log_level, log_format)  # type: ignore[arg-type]
        if strict_plugins and state.plugins.failures:
            raise UsageFailure(
                "strict plugin mode: " + "; ".join(f.describe() for f in state.plugins.failures)
            )
        if ctx.invoked_subcommand != "plugins":  # `esper plugins` lists failures itself
            for failure in state.plugins.failures:
                logger.warning("plugin_skipped", detail=failure.describe())
        # Any command keeps --help's listing of plugin commands current.
        group = ctx.command
        assert isinstance(group, LazyEsperGroup)
        group.ensure_plugin_commands()
        ctx.obj = state

    return cli


def main() -> None:
    """Console-script entry point."""
    try:
        build_cli()(prog_name="esper")
    except EsperError as exc:  # strict plugin mode, met while listing the plugins' commands
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
