"""``esper evaluate``: compare a trained policy with baseline controllers on held-out seeds."""

from __future__ import annotations

import json
from pathlib import Path

import click

from esper_core.cli.app import AppState
from esper_core.cli.params import PathParam


@click.command("evaluate")
@click.option("--policy-checkpoint", "checkpoint", type=PathParam(path_type=Path, dir_okay=False),
              required=True, help="A trained policy (e.g. RUN_DIR/policy.pt from `esper run --policy ppo`).")
@click.option("--episodes", type=int, default=3, show_default=True, help="Held-out episodes per policy.")
@click.option("--against", default=None,
              help="Comma-separated policies to compare with (default: every installed policy declared "
                   "for comparison, e.g. heuristic, random and noop from esper-policies); '' for none.")
@click.option("--seed", type=int, default=None, help="Seed of the held-out episodes (default: the run's).")
@click.option("--epochs", type=int, default=None, help="Epochs per episode (default: the training run's).")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the training run's).")
@click.option("--policy-option", "policy_option", multiple=True, metavar="KEY=VALUE",
              help="An option of the trained policy as it acts (e.g. sample=true); repeatable. Values are "
                   "parsed as TOML.")
@click.option("--out", type=PathParam(path_type=Path, dir_okay=False), default=None,
              help="Also write the results to this JSON file (a new one, unless --force).")
@click.option("--force", is_flag=True, help="Replace --out if it exists (never a file a run wrote).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@click.pass_obj
def evaluate_command(state: AppState, checkpoint: Path, episodes: int, against: str | None, seed: int | None,
                     epochs: int | None, device: str | None, policy_option: tuple[str, ...], out: Path | None,
                     force: bool, as_json: bool) -> None:
    """Run a trained policy and baselines on the same held-out episodes; print mean ± std."""
    from esper_core.config import parse_key_values
    from esper_core.files import write_json
    from esper_core.options import option_names
    from esper_core.presentation.evaluation_report import format_evaluation
    from esper_core.presentation.progress import progress_callback
    from esper_core.setup.defaults import comparison_policies
    from esper_core.storage.outputs import check_output
    from esper_core.storage.rundir import enclosing_run_dir
    from esper_core.tolaria.evaluation import evaluate_checkpoint

    names = (comparison_policies(state.catalog) if against is None
             else option_names(against, option="--against", noun="policy name", allow_empty=True))
    if out is not None:
        # before the episodes, not after them; the run that trained the policy may hold it
        check_output(out, force=force, reads=enclosing_run_dir(checkpoint))
    evaluation = evaluate_checkpoint(state.catalog, checkpoint, episodes=episodes, against=names, seed=seed,
                                     epochs=epochs, device=device,
                                     policy_options=parse_key_values(policy_option, flag="--policy-option"),
                                     on_progress=progress_callback("evaluate", "episodes"))
    if out is not None:
        write_json(out, evaluation)
    click.echo(json.dumps(evaluation, indent=2) if as_json else format_evaluation(evaluation))
