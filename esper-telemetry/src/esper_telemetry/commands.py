"""The ``esper runs`` and ``esper report`` commands (added to the CLI by the plugin).

Expected failures (unknown run, missing directory, unreadable database) are
:class:`~esper_core.errors.EsperError` and become a one-line message with exit status 2.
matplotlib is imported only inside ``report``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from esper_core.errors import EsperError
from esper_telemetry import queries
from esper_telemetry.queries import RunRecord
from esper_telemetry.tables import fmt, format_table


class CommandError(click.ClickException):
    """A clean error message with exit status 2 (bad input), like a usage error."""

    exit_code = 2


@contextmanager
def _clean_errors() -> Iterator[None]:
    try:
        yield
    except EsperError as exc:
        raise CommandError(str(exc)) from exc


# Every click.Path of a command in the esper group refuses an empty path (esper_core.cli.params).
_DB_OPTION = click.option(
    "--db", "db", type=click.Path(path_type=Path), default=None,
    help="Run database (runs.sqlite / run.sqlite) or a directory of runs. Default: ./runs",
)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


#: What the accuracy labels mean; printed under ``runs show`` so the two are never confused.
_ACCURACY_NOTE = ("test: the held-out split no controller or gate saw (the headline)\n"
                  "val: the validation split the controller and gates optimised (optimistic)")
_SEED_NOTE = ("gain (TRAINING): gain over the no-seed path, measured while the seed trained\n"
              "dependence: accuracy lost when the seed is removed from the model that trained "
              "with it (overstates what it added)")


def _outcomes(record: RunRecord) -> str:
    counts = record.outcomes
    return f"{counts['fossilized']}/{counts['culled']}/{counts['live']}"


@click.group("runs")
def runs() -> None:
    """Query recorded runs (the SQLite telemetry database or run directories)."""


@runs.command("list")
@_DB_OPTION
def list_command(db: Path | None) -> None:
    """List every recorded run, oldest first."""
    with _clean_errors():
        sources = queries.open_sources(db)
        try:
            records = queries.list_runs(sources)
        finally:
            queries.close_sources(sources)
    if not records:
        click.echo("no runs recorded")
        return
    headers = ["run", "task", "policy", "seed", "status", "epochs", "test %", "base test %",
               "test gain", "val final %", "val best %", "params", "seeds F/C/L", "wall s",
               "started"]
    rows = [[r.run_id, r.task, r.policy, r.seed, r.status + (" (truncated)" if r.truncated
             else ""), r.epochs, fmt(r.test_accuracy, ".2f"), fmt(r.baseline_test_accuracy, ".2f"),
             fmt(r.test_gain, "+.2f"), fmt(r.final_accuracy, ".2f"), fmt(r.best_accuracy, ".2f"),
             fmt(r.total_params, ",d"), _outcomes(r), fmt(r.wall_seconds, ".1f"),
             _when(r.started_at)] for r in records]
    click.echo(format_table(headers, rows))


def _final_accuracy_field(record: RunRecord) -> tuple[str, str]:
    """A policy-training run has no single final model: its figure is a mean, named as one."""
    if record.training_rounds is None:
        return ("val final accuracy", fmt(record.final_accuracy, ".2f"))
    return ("val final accuracy, last-round mean", fmt(record.final_accuracy, ".2f"))


@runs.command("show")
@click.argument("run", type=click.Path(path_type=str))  # an id or a path: '' is neither
@_DB_OPTION
def show_command(run: str, db: Path | None) -> None:
    """Show one run (an id, or the path of its run directory): results, seeds, epochs."""
    with _clean_errors():
        record, source, sources = queries.resolve_run(run, db)
        try:
            epochs = queries.run_epochs(source, record.run_id)
        finally:
            queries.close_sources(sources)
    fields = [
        ("run", record.run_id), ("source", record.source), ("task", record.task),
        ("policy", record.policy), ("seed", record.seed),
        ("status", record.status + (" (output truncated by cap)" if record.truncated else "")),
        ("epochs", record.epochs),
        ("test accuracy", fmt(record.test_accuracy, ".2f")),
        ("baseline test accuracy", fmt(record.baseline_test_accuracy, ".2f")),
        ("test gain over baseline", fmt(record.test_gain, "+.2f")),
        _final_accuracy_field(record),
        ("val best accuracy", fmt(record.best_accuracy, ".2f")),
        ("baseline val accuracy", fmt(record.baseline_accuracy, ".2f")),
        ("host params", fmt(record.host_params, ",d")),
        ("seed params", fmt(record.seed_params, ",d")),
        ("rollbacks", record.rollbacks), ("wall seconds", fmt(record.wall_seconds, ".1f")),
        ("started", _when(record.started_at)),
    ]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        click.echo(f"{name.ljust(width)}  {fmt(value)}")
    click.echo(_ACCURACY_NOTE)
    click.echo("\nseeds")
    if record.seeds:
        click.echo(format_table(
            ["episode", "slot", "blueprint", "germinated", "ended", "outcome",
             "gain (TRAINING)", "dependence"],
            [[s.episode, s.slot, s.blueprint, s.germinated_epoch, s.ended_epoch, s.outcome,
              fmt(s.seed_gain, "+.2f"), fmt(s.contribution, "+.2f")] for s in record.seeds]))
        click.echo(_SEED_NOTE)
        click.echo("\nseeds by blueprint")
        click.echo(format_table(
            ["blueprint", "fossilized", "culled", "live"],
            [[bp, c["fossilized"], c["culled"], c["live"]]
             for bp, c in record.by_blueprint.items()]))
    else:
        click.echo("(none germinated)")
    if epochs:
        click.echo(f"\nepochs (episode {epochs[0].episode})")
        # The gradient-health column appears for runs recorded with the gradient_health observer.
        grad = any(e.grad_score is not None for e in epochs)
        click.echo(format_table(
            ["epoch", "train loss", "val loss", "val acc %", "host params", "seed params",
             "seconds", *(["grad health"] if grad else [])],
            [[e.epoch, fmt(e.train_loss, ".4f"), fmt(e.val_loss, ".4f"),
              fmt(e.val_accuracy, ".2f"), fmt(e.host_params, ",d"), fmt(e.seed_params, ",d"),
              fmt(e.seconds, ".2f"), *([fmt(e.grad_score, ".2f")] if grad else [])]
             for e in epochs]))


_COMPARE_ROWS: tuple[tuple[str, Callable[[RunRecord], Any]], ...] = (
    ("task", lambda r: r.task),
    ("policy", lambda r: r.policy),
    ("seed", lambda r: r.seed),
    ("status", lambda r: r.status),
    ("epochs", lambda r: r.epochs),
    ("test accuracy %", lambda r: fmt(r.test_accuracy, ".2f")),
    ("baseline test accuracy %", lambda r: fmt(r.baseline_test_accuracy, ".2f")),
    ("test gain over baseline", lambda r: fmt(r.test_gain, "+.2f")),
    ("val final accuracy %", lambda r: fmt(r.final_accuracy, ".2f")),
    ("val best accuracy %", lambda r: fmt(r.best_accuracy, ".2f")),
    ("baseline val accuracy %", lambda r: fmt(r.baseline_accuracy, ".2f")),
    ("host params", lambda r: fmt(r.host_params, ",d")),
    ("seed params", lambda r: fmt(r.seed_params, ",d")),
    ("seeds fossilized", lambda r: r.outcomes["fossilized"]),
    ("seeds culled", lambda r: r.outcomes["culled"]),
    ("seeds live", lambda r: r.outcomes["live"]),
    ("rollbacks", lambda r: r.rollbacks),
    ("wall seconds", lambda r: fmt(r.wall_seconds, ".1f")),
)


@runs.command("compare")
@click.argument("run_refs", metavar="RUN RUN...", nargs=-1, required=True, type=click.Path(path_type=str))
@_DB_OPTION
def compare_command(run_refs: tuple[str, ...], db: Path | None) -> None:
    """Compare runs side by side (ids or run directory paths); Δ is against the first run."""
    if len(run_refs) < 2:
        raise click.UsageError("compare needs at least two runs")
    records: list[RunRecord] = []
    named: dict[tuple[str, str], str] = {}
    with _clean_errors():
        for ref in run_refs:
            record, _, sources = queries.resolve_run(ref, db)
            queries.close_sources(sources)
            key = (str(Path(record.source).resolve()), record.run_id)  # ../r1 and /abs/r1 alike
            if key in named:
                raise CommandError(f"{named[key]!r} and {ref!r} name the same run ({record.run_id}); "
                                   "compare different runs")
            named[key] = ref
            records.append(record)
    rows = [[label, *(getter(r) for r in records)] for label, getter in _COMPARE_ROWS]
    # Each Δ sits under the figure it is taken from.
    rows.insert(8, ["Δ test vs first", *_deltas(records, lambda r: r.test_accuracy)])
    rows.insert(10, ["Δ val final vs first", *_deltas(records, lambda r: r.final_accuracy)])
    blueprints = sorted({bp for r in records for bp in r.by_blueprint})
    for bp in blueprints:
        rows.append([f"{bp} F/C/L", *(
            "{fossilized}/{culled}/{live}".format_map(
                {k: r.by_blueprint.get(bp, Counter()).get(k, 0) for k in ("fossilized", "culled", "live")}
            ) for r in records)])
    headers = ["", *(r.run_id for r in records)]
    click.echo(format_table(headers, rows, align="l" + "r" * len(records)))
    # A run whose task was never recorded is no evidence of a difference.
    tasks = list(dict.fromkeys(r.task for r in records if r.task))
    if len(tasks) > 1:
        click.echo(f"warning: these runs are on different tasks ({', '.join(tasks)}); "
                   f"the Δ rows compare accuracies of different tasks", err=True)


def _deltas(records: list[RunRecord], value: Callable[[RunRecord], float | None]) -> list[str]:
    """Each run's ``value`` minus the first run's, or '-' where either is missing."""
    base = value(records[0])
    return [fmt(v - base, "+.2f") if (v := value(r)) is not None and base is not None else "-"
            for r in records]


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output directory, new or empty unless --force; never inside another run or "
                   "dataset directory. Default: RUN_DIR/report (rewritten by every report)")
@click.option("--force", is_flag=True, help="Write into --out even if it holds files (its figures and "
                                            "report.html are replaced).")
@click.option("--episode", type=int, default=None,
              help="Episode whose curves to plot. Default: the last one.")
def report(run_dir: Path, out_dir: Path | None, force: bool, episode: int | None) -> None:
    """Write PNG figures and a self-contained report.html for a run directory."""
    from esper_core.sdk import check_output
    from esper_telemetry.report.build import build_report  # imports matplotlib

    with _clean_errors():
        if out_dir is not None:
            check_output(out_dir, force=force, directory=True, reads=run_dir)
        result = build_report(run_dir, out_dir, episode=episode)
    for figure in result.figures:
        click.echo(f"wrote {figure.path}")
    click.echo(f"wrote {result.html}")
