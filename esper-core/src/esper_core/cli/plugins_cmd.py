"""``esper plugins``: what is installed, what each plugin contributes, and what failed."""

from __future__ import annotations

import json
from typing import Any

import click

from esper_core.cli.app import AppState
from esper_core.cli.errors import UsageFailure
from esper_core.errors import PluginError
from esper_core.presentation.table import format_table
from esper_core.wording import count, singular


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def plugins_command(state: AppState, as_json: bool) -> None:
    """List plugins: distribution, version, hooks, components contributed, failures."""
    loaded = state.plugins
    catalog_error: str | None = None
    contributions: dict[str, dict[str, list[str]]] = {}
    try:
        contributions = state.catalog.contributions
    except PluginError as exc:
        catalog_error = str(exc)
    rows: list[dict[str, Any]] = []
    for info in loaded.plugins:
        rows.append({
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "module": info.module,
            "hooks": loaded.hooks_of(info),
            "components": contributions.get(info.name, {}),
        })
    failures = [
        {"name": f.name, "distribution": f.distribution, "version": f.version, "stage": f.stage,
         "error": f.error}
        for f in loaded.failures
    ]
    if as_json:
        click.echo(json.dumps({"plugins": rows, "failures": failures, "error": catalog_error}, indent=2))
    else:
        table_rows = []
        for r in rows:
            comps = ", ".join(count(len(v), singular(k.replace('_', ' '))) for k, v in r["components"].items() if v)
            hooks = ", ".join(h.removeprefix("esper_") for h in r["hooks"])
            table_rows.append([r["distribution"], r["version"], r["name"], hooks, comps or "-"])
        click.echo(format_table(["distribution", "version", "plugin", "hooks", "components"], table_rows))
        if failures:
            click.echo("\nFailed plugins (skipped):")
            for f in loaded.failures:
                click.echo(f"  {f.describe()}")
    if catalog_error:
        raise UsageFailure(catalog_error)
