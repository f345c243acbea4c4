"""The ``esper`` command group.

Importing this module must stay cheap: ``esper --help`` and ``esper plugins`` never import
torch (a test checks ``sys.modules``). Commands that train import their engine lazily.
"""

from __future__ import annotations

import sys

import click

from esper_core.cli.app import AppState
from esper_core.cli.blueprints_cmd import blueprints_command
from esper_core.cli.discover_cmd import discover_command
from esper_core.cli.errors import EsperGroup, UsageFailure
from esper_core.cli.evaluate_cmd import evaluate_command
from esper_core.cli.export_cmd import export_command
from esper_core.cli.new_plugin_cmd import new_plugin_command
from esper_core.cli.plugins_cmd import plugins_command
from esper_core.cli.run_cmd import run_command
from esper_core.errors import EsperError
from esper_core.log_config import LEVELS, configure_logging, deferred_logger
from esper_core.plugins.manager import PluginSettings, add_plugin_commands, installed_versions

logger = deferred_logger(__name__)


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for name, version in installed_versions():
        click.echo(f"{name} {version}")
    ctx.exit()


def build_cli(settings: PluginSettings | None = None) -> click.Group:
    """Build the command group, letting plugins add their commands."""
    state = AppState(settings or PluginSettings.from_env())

    @click.group(cls=EsperGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
        ctx.obj = state

    cli.add_command(plugins_command)
    cli.add_command(blueprints_command)
    cli.add_command(run_command)
    cli.add_command(evaluate_command)
    cli.add_command(export_command)
    cli.add_command(discover_command)
    cli.add_command(new_plugin_command)
    add_plugin_commands(state.plugins, cli)
    return cli


def main() -> None:
    """Console-script entry point."""
    try:
        cli = build_cli()
    except EsperError as exc:  # strict plugin mode at start-up
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    cli(prog_name="esper")
