"""``esper discover``: search for new blueprints and write a blueprint library."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import click

from esper_core.cli.app import AppState
from esper_core.cli.params import PathParam
from esper_core.config import MAX_THREADS, parse_key_values
from esper_core.errors import ConfigError
from esper_core.options import INT_MAX, option_names
from esper_core.presentation.table import format_table

#: The most candidates one search evaluates (``--budget``; 256 by default, hours at 100000).
MAX_BUDGET = 100_000
#: The most training steps per candidate and task (``--steps``; the tasks' own is 100): the
#: Crucible holds a loss per step for a whole batch of candidates.
MAX_STEPS = 100_000
#: The most hall-of-fame entries kept and written (``--hall-of-fame``, ``--library-size``).
MAX_HALL_OF_FAME = 1024


@click.command("discover")
@click.option("--generator", default="architect", show_default=True,
              help="Blueprint generator: architect, random, evolution or a plugin's.")
@click.option("--budget", type=click.IntRange(1, MAX_BUDGET), default=256, show_default=True,
              help="Candidates to evaluate in total (invalid ones count too).")
@click.option("--batch-size", type=click.IntRange(1, 1024), default=64, show_default=True,
              help="Candidates proposed and evaluated per step.")
@click.option("--tasks", default=None,
              help="Comma-separated Crucible tasks (the Architect's curriculum follows this order; default: "
                   "every task the installed topology declares, e.g. xor,temporal,image for cnn).")
@click.option("--seed", type=click.IntRange(0, INT_MAX), default=0, show_default=True,
              help="Seeds the generator, the task data and every candidate's initial weights.")
@click.option("--steps", type=click.IntRange(1, MAX_STEPS), default=None,
              help="Training steps per candidate and task (default: each task's own, 100).")
@click.option("--latency-weight", type=click.FloatRange(min=0), default=None,
              help="Weight of the measured-latency penalty (0 makes runs bit-for-bit reproducible).")
@click.option("--hall-of-fame", type=click.IntRange(1, MAX_HALL_OF_FAME), default=16, show_default=True,
              help="Best distinct candidates kept (and compared against for redundancy).")
@click.option("--novelty-radius", type=click.FloatRange(0, 1), default=0.95, show_default=True,
              help="A candidate within this CKA of a catalog blueprint (or with its tokens) is not novel.")
@click.option("--library-size", type=click.IntRange(1, MAX_HALL_OF_FAME), default=8, show_default=True,
              help="Best hall-of-fame entries written to the library.")
@click.option("--generator-option", "generator_option", multiple=True, metavar="KEY=VALUE",
              help="A generator setting (e.g. population=64 for evolution); repeatable.")
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=1, show_default=True,
              help="CPU threads for torch.")
@click.option("--out", type=PathParam(path_type=Path, dir_okay=False), default=Path("blueprint-library.json"),
              show_default=True, help="Blueprint library file to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists (never a file a run wrote).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def discover_command(state: AppState, generator: str, budget: int, batch_size: int, tasks: str | None, seed: int,
                     steps: int | None, latency_weight: float | None, hall_of_fame: int, novelty_radius: float,
                     library_size: int,
                     generator_option: tuple[str, ...], threads: int, out: Path, force: bool,
                     as_json: bool) -> None:
    """Search for blueprints with the Crucible; print best and mean fitness per step."""
    requested = None if tasks is None else option_names(tasks, option="--tasks", noun="task name", unique=True)
    from esper_core.storage.outputs import check_output

    check_output(out, force=force)  # before the search, not after it
    spec = state.catalog.generators.get(generator)

    import torch

    from esper_core.discovery.crucible import Crucible, CrucibleConfig, FitnessWeights
    from esper_core.discovery.curriculum import discovery_topology, tasks_of
    from esper_core.discovery.library import BlueprintLibrary, LibraryEntry, write_library
    from esper_core.discovery.search import run_search
    from esper_core.presentation.progress import Progress

    torch.set_num_threads(threads)
    weights = FitnessWeights() if latency_weight is None else FitnessWeights(latency_weight=latency_weight)
    topology = discovery_topology(state.catalog)
    crucible = Crucible(CrucibleConfig(tasks=requested, weights=weights, seed=seed, hall_of_fame=hall_of_fame,
                                       steps=steps, novelty_radius=novelty_radius), curriculum=tasks_of(topology))
    task_names = tuple(t.name for t in crucible.tasks)
    catalog_tokens = [s.tokens for s in state.catalog.blueprints.for_topology(topology.name) if s.tokens]
    options: dict[str, Any] = {"budget": budget, "batch_size": batch_size, "tasks": task_names,
                               "catalog_tokens": catalog_tokens,
                               "generator_options": parse_key_values(generator_option, flag="--generator-option")}
    try:
        gen = spec.factory(seed=seed, options=options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"generator {generator!r}: {exc}") from None

    # The catalog seeds the hall of fame: rediscovering a catalog design is redundant, not novel.
    crucible.seed_catalog(catalog_tokens)
    progress = Progress("discover", budget, "candidates")

    def show(step: Any) -> None:
        progress.advance(step.evaluated - progress.done)
        if not as_json:  # on a terminal the line ends with the time taken and the ETA
            timing = progress.status().partition("  ")[2]
            click.echo(f"step {step.step:>3}  evaluated {step.evaluated:>5}  best {step.best:+.4f}  "
                       f"mean {step.mean:+.4f}  valid {step.valid:>4.0%}" + (f"  {timing}" if timing else ""))

    result = run_search(gen, crucible, budget=budget, batch_size=batch_size, on_step=show)
    fame = list(result.hall_of_fame)[:library_size]
    novel = result.best_novel
    index = {e.tokens: i for i, e in enumerate(result.evaluations)}
    provenance = {"generator": generator, "budget": budget, "batch_size": batch_size, "seed": seed,
                  "tasks": list(task_names), "steps": steps, "weights": {
                      k: getattr(weights, k) for k in ("param_weight", "param_scale", "latency_weight",
                                                       "stability_bonus", "redundancy_weight")},
                  "generator_options": options["generator_options"], "novelty_radius": novelty_radius,
                  "catalog": [list(t) for t in catalog_tokens], "distinct_valid": result.distinct_valid,
                  "best_novel": None if novel is None else {"tokens": list(novel.tokens), "fitness": novel.fitness},
                  "novel": [f"{generator}-s{seed}-{rank:02d}" for rank, e in enumerate(fame, start=1) if e.novel]}
    library = BlueprintLibrary(topology=topology.name, provenance=provenance, entries=[
        LibraryEntry(name=f"{generator}-s{seed}-{rank:02d}", tokens=e.tokens, fitness=e.fitness,
                     performance=e.performance, params=e.params, evaluation=index[e.tokens])
        for rank, e in enumerate(fame, start=1)
    ])
    write_library(out, library)
    summary = {
        "generator": generator, "budget": budget, "best_fitness": result.best.fitness,
        "best_tokens": list(result.best.tokens), "best_is_novel": result.best.novel,
        "best_novel_fitness": None if novel is None else novel.fitness,
        "best_novel_tokens": None if novel is None else list(novel.tokens),
        "best_performance": dict(result.best.performance), "best_params": result.best.params,
        "mean_fitness": statistics.fmean(e.fitness for e in result.evaluations),
        "valid_fraction": sum(e.valid for e in result.evaluations) / len(result.evaluations),
        "distinct_valid": result.distinct_valid, "novelty_radius": novelty_radius, "library": str(out),
        "steps": [{"step": s.step, "evaluated": s.evaluated, "best": s.best, "mean": s.mean, "valid": s.valid}
                  for s in result.steps],
        "hall_of_fame": [{"tokens": list(e.tokens), "fitness": e.fitness, "performance": e.performance,
                          "redundancy": e.redundancy, "catalog_similarity": e.catalog_similarity, "novel": e.novel}
                         for e in fame],
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo("\nhall of fame")
    click.echo(format_table(
        ["rank", "fitness", *task_names, "params", "catalog CKA", "novel", "tokens"],
        [[i, f"{e.fitness:+.4f}", *(f"{e.performance[t]:.2f}" for t in task_names), f"{e.params:.0f}",
          f"{e.catalog_similarity:.2f}", "yes" if e.novel else "no", " ".join(e.tokens)]
         for i, e in enumerate(fame, start=1)],
    ))
    click.echo(f"\ndistinct valid structures: {result.distinct_valid} of {budget} candidates")
    click.echo(f"best overall: {result.best.fitness:+.4f}  {' '.join(result.best.tokens)}"
               + ("" if result.best.novel else "  (within the catalog's radius)"))
    click.echo("best novel:   " + ("none (every valid candidate is within the catalog's radius "
                                   f"{novelty_radius:g})" if novel is None
                                   else f"{novel.fitness:+.4f}  {' '.join(novel.tokens)}"))
    click.echo(f"\nblueprint library: {out} ({len(fame)} blueprints; use with esper run --blueprint-library)")
