"""``esper blueprints``: the blueprint catalog."""

from __future__ import annotations

import json

import click

from esper_core.cli.app import AppState
from esper_core.cli.table import format_table
from esper_core.errors import UnknownNameError


@click.command("blueprints")
@click.option("--topology", "-t", default=None, help="Only this topology (e.g. cnn, transformer).")
@click.option("--width", default=32, show_default=True, type=click.IntRange(min=1),
              help="Slot width at which parameter estimates are given.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def blueprints_command(state: AppState, topology: str | None, width: int, as_json: bool) -> None:
    """Print the blueprint catalog: index, name, topology, parameters, anti-pattern, provider."""
    catalog = state.catalog
    topologies = catalog.blueprints.topologies()
    if topology is not None and topology not in topologies:
        raise UnknownNameError("topology", topology, topologies)
    rows = []
    for topo in [topology] if topology else topologies:
        for spec in catalog.blueprints.for_topology(topo):
            provider = catalog.blueprints.provider(spec.key)
            rows.append({
                "index": spec.action_index,
                "name": spec.name,
                "topology": spec.topology,
                "params": spec.param_estimate(width),
                "antipattern": spec.is_antipattern,
                "distribution": provider.distribution,
                "description": spec.description,
            })
    if as_json:
        click.echo(json.dumps({"width": width, "blueprints": rows}, indent=2))
        return
    click.echo(format_table(
        ["index", "name", "topology", f"params@{width}", "anti-pattern", "distribution", "description"],
        [[r["index"] if r["index"] is not None else "-", r["name"], r["topology"], r["params"],
          "yes" if r["antipattern"] else "", r["distribution"], r["description"]] for r in rows],
    ))
