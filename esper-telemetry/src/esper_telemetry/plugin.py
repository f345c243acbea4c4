"""esper-telemetry's plugin module: sinks, the ``gradient_health`` observer and the ``runs`` /
``report`` commands.

Imported whenever the ``esper`` command starts (including ``esper --help``), so it imports
neither torch nor matplotlib: sink factories are lazy references and the command module is
imported inside the hook body (it keeps its own heavy imports inside the commands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esper_core.contracts.specs import ObserverSpec, SinkSpec
from esper_core.lazy import lazy
from esper_core.markers import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import click

_SINKS = "esper_telemetry.sinks"


@hookimpl
def esper_register_telemetry_sinks() -> list[SinkSpec]:
    return [
        SinkSpec(name="console", factory=lazy(f"{_SINKS}.console:ConsoleSink.from_options"),
                 description="one readable line per epoch and per lifecycle, gate, decision "
                             "and rollback event, on stderr"),
        SinkSpec(name="csv", factory=lazy(f"{_SINKS}.csv_metrics:CsvSink.from_options"),
                 description="per-epoch metrics (losses, accuracy, params, α per slot) in "
                             "metrics.csv"),
        SinkSpec(name="sqlite", factory=lazy(f"{_SINKS}.sqlite:SqliteSink.from_options"),
                 description="runs, epochs, seeds, decisions and events in an SQLite database "
                             "(run.sqlite, or a shared file via the 'path' option)"),
        SinkSpec(name="tensorboard",
                 factory=lazy(f"{_SINKS}.tensorboard:TensorBoardSink.from_options"),
                 description="TensorBoard scalars (needs esper-telemetry[tensorboard])"),
    ]


@hookimpl
def esper_register_observers() -> list[ObserverSpec]:
    return [
        ObserverSpec(
            name="gradient_health",
            factory=lazy("esper_telemetry.observer:GradientHealthObserver.from_options"),
            description="gradient norm, vanishing/exploding fractions and a health score per "
                        "epoch ([observers.gradient_health] profile = minimal | standard | "
                        "diagnostic; default minimal)",
        )
    ]


@hookimpl
def esper_add_commands(cli: click.Group) -> None:
    from esper_telemetry.commands import report, runs

    cli.add_command(runs)
    cli.add_command(report)
