"""``esper blueprints``: the blueprint catalog."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from esper_core.cli.app import AppState
from esper_core.errors import UnknownNameError
from esper_core.presentation.table import format_table

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from esper_core.plugins.registry import Catalog


#: The width for a topology none of whose tasks declares ``slot_width``.
FALLBACK_WIDTH = 32


def host_width(catalog: Catalog, topology: str) -> int:
    """The slot width of the topology's default host: that of its first task declaring one."""
    for spec in catalog.tasks:
        if spec.topology == topology and spec.slot_width is not None:
            return spec.slot_width
    return FALLBACK_WIDTH


@click.command("blueprints")
@click.option("--topology", "-t", default=None, help="Only this topology (e.g. cnn, transformer).")
@click.option("--width", default=None, type=click.IntRange(min=1),
              help="Slot width at which parameter estimates are given "
                   f"[default: each topology's host width, else {FALLBACK_WIDTH}].")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def blueprints_command(state: AppState, topology: str | None, width: int | None, as_json: bool) -> None:
    """Print the blueprint catalog: index, name, topology, parameters at a slot width, anti-pattern,
    provider."""
    catalog = state.catalog
    topologies = catalog.blueprints.topologies()
    if topology is not None and topology not in topologies:
        raise UnknownNameError("topology", topology, topologies)
    rows = []
    for topo in [topology] if topology else topologies:
        topo_width = width if width is not None else host_width(catalog, topo)
        for spec in catalog.blueprints.for_topology(topo):
            provider = catalog.blueprints.provider(spec.key)
            rows.append({
                "index": spec.action_index,
                "name": spec.name,
                "topology": spec.topology,
                "width": topo_width,
                "params": spec.param_estimate(topo_width),
                "antipattern": spec.is_antipattern,
                "distribution": provider.distribution,
                "description": spec.description,
            })
    if as_json:
        click.echo(json.dumps({"width": width, "blueprints": rows}, indent=2))
        return
    click.echo(format_table(
        ["index", "name", "topology", "width", "params", "anti-pattern", "distribution", "description"],
        [[r["index"] if r["index"] is not None else "-", r["name"], r["topology"], r["width"], r["params"],
          "yes" if r["antipattern"] else "", r["distribution"], r["description"]] for r in rows],
    ))
