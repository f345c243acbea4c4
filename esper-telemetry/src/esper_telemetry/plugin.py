"""esper-telemetry's plugin module: sinks, the ``gradient_health`` observer and the ``runs`` /
``report`` commands.

Imported whenever the ``esper`` command starts (including ``esper --help``), so it imports
neither torch nor matplotlib: sink factories and options classes are lazy references and the
command module is imported inside the hook body (it keeps its own heavy imports inside the
commands).

Every sink and the observer declare ``options=``, the attrs class their factory parses its
``[telemetry.<name>]`` / ``[observers.<name>]`` table into, so the core checks that table when a
run is resolved, whether or not the run enables the component: a misspelt key in the table of a
sink switched off is refused, not silently kept.
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
                             "and rollback event, on stderr",
                 options=lazy(f"{_SINKS}.console:ConsoleOptions")),
        SinkSpec(name="csv", factory=lazy(f"{_SINKS}.csv_metrics:CsvSink.from_options"),
                 description="per-epoch metrics (losses, accuracy, params, α per slot) in "
                             "metrics.csv",
                 options=lazy(f"{_SINKS}.csv_metrics:CsvOptions")),
        SinkSpec(name="sqlite", factory=lazy(f"{_SINKS}.sqlite:SqliteSink.from_options"),
                 description="runs, epochs, seeds, decisions and events in an SQLite database "
                             "(run.sqlite, or a shared file via the 'path' option)",
                 options=lazy(f"{_SINKS}.sqlite:SqliteOptions")),
        SinkSpec(name="tensorboard",
                 factory=lazy(f"{_SINKS}.tensorboard:TensorBoardSink.from_options"),
                 description="TensorBoard scalars (needs esper-telemetry[tensorboard])",
                 # the options module imports no tensorboard (nor torch): a table is checked
                 # where the optional package is not installed too
                 options=lazy(f"{_SINKS}.tensorboard:TensorBoardOptions")),
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
            options=lazy("esper_telemetry.observer:ObserverOptions"),
        )
    ]


@hookimpl
def esper_add_commands(cli: click.Group) -> None:
    from esper_telemetry.commands import report, runs

    cli.add_command(runs)
    cli.add_command(report)
