"""``esper antipatterns``: list the anti-patterns in curriculum order."""

from __future__ import annotations

import json

import click

from esper_antipatterns.catalog import MEASUREMENT, TOPOLOGY, TRANSFORMER, Category, get
from esper_antipatterns.curriculum import N_STAGES, curriculum, members
from esper_antipatterns.signatures import PENALTIES
from esper_core.sdk import format_table


@click.command("antipatterns")
@click.option("--category", "-c", type=click.Choice([c.value for c in Category]), default=None,
              help="Only this family.")
@click.option("--stage", "-s", type=click.IntRange(1, N_STAGES), default=None,
              help="Every family introduced up to this curriculum stage (cumulative).")
@click.option("--names", is_flag=True,
              help="Print only a comma-separated name list, for `esper run --blueprints`.")
@click.option("--topology", "-t", type=click.Choice([TOPOLOGY, TRANSFORMER]), default=TOPOLOGY, show_default=True,
              help="Whose forms' measured signatures to show.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (with each form's note).")
def antipatterns_command(category: str | None, stage: int | None, names: bool, topology: str,
                         as_json: bool) -> None:
    """List the anti-pattern blueprints in curriculum order (catastrophic → gradient killers →
    deceptive → subtle), with severity, the failure signature each measurably shows (and its
    penalty), what the measurement found against seed 000's design, and the lesson."""
    if category is not None and stage is not None:
        raise click.UsageError("give --category or --stage, not both")
    selected = (members(category) if category is not None
                else curriculum(stage))
    if names:
        click.echo(",".join(selected))
        return
    rows = []
    for name in selected:
        entry = get(f"{topology}:{name}")
        rows.append({"stage": entry.category.stage, "index": entry.index, "name": name, "topology": topology,
                     "category": entry.category.value, "severity": entry.severity.value,
                     "signature": entry.expected_value,
                     "penalty": None if entry.expected_signature is None else PENALTIES[entry.expected_signature],
                     "measured": entry.measured, "note": entry.note, "lesson": entry.lesson})
    if as_json:
        click.echo(json.dumps({"antipatterns": rows}, indent=2))
        return
    headers = ["stage", "index", "name", "category", "severity", "signature", "penalty", "measured", "lesson"]
    click.echo(format_table(headers, [["-" if r[h] is None else r[h] for h in headers] for r in rows]))
    click.echo(f"\n{topology} forms. signature: what real runs measurably show ({MEASUREMENT}; "
               "benchmarks/antipatterns_signatures.py); measured: in how many seeds each signature appeared; "
               "--json adds what each form does instead of its designed failure.")
