"""``esper collect``, added through the ``esper_add_commands`` hook."""

from __future__ import annotations

import json
from pathlib import Path

import click

from esper_core.sdk import AppState, RunConfig, parse_key_values


@click.command("collect")
@click.option("--policy", default="heuristic", show_default=True, help="Behaviour policy to record.")
@click.option("--episodes", type=int, required=True,
              help="Episodes the dataset should hold (numbers 0..N-1); run again, only those it lacks are recorded.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Dataset directory (created, or continued when it already holds episodes recorded "
                   "with the same settings); never inside a run or another dataset's directory.")
@click.option("--task", default=None, help="Task name (default: shapes).")
@click.option("--epochs", type=int, default=None, help="Epochs per episode (default: the task's).")
@click.option("--seed", type=int, default=None, help="Base seed of the episodes (default 0).")
@click.option("--blueprints", default=None, help="Comma-separated blueprints (the action space).")
@click.option("--slots", default=None, help="Comma-separated injection points to give slots.")
@click.option("--device", default=None, help="auto (default), cpu, cuda or cuda:N.")
@click.option("--policy-checkpoint", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Record a trained policy from this checkpoint.")
@click.option("--policy-option", "policy_option", multiple=True, metavar="KEY=VALUE",
              help="Any option of the behaviour policy; repeatable.")
@click.option("--task-option", "task_option", multiple=True, metavar="KEY=VALUE",
              help="Any task option; repeatable.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="TOML config file; command-line options override it.")
@click.pass_obj
def collect_command(state: AppState, episodes: int, out: Path, policy_checkpoint: Path | None,
                    policy_option: tuple[str, ...], task_option: tuple[str, ...], config_path: Path | None,
                    **options: object) -> None:
    """Record a behaviour policy's episodes as an offline dataset (for --policy iql)."""
    from esper_core.options import check_count
    from esper_core.sdk import check_outside_runs, check_writable_dir, resolve_run
    from esper_policies.offline.collect import collect

    check_count(episodes, flag="--episodes")
    check_writable_dir(out)
    check_outside_runs(out)  # a dataset is never put inside a run's (or another dataset's) directory

    policy_options = parse_key_values(policy_option, flag="--policy-option")
    if policy_checkpoint is not None:
        policy_options["checkpoint"] = str(policy_checkpoint)
    config = RunConfig.from_sources(config_path, {**options, "telemetry": "", "observers": ""},
                                    task_options=parse_key_values(task_option), policy_options=policy_options)
    summary = collect(resolve_run(config, state.catalog), state.catalog, out, episodes=episodes)
    click.echo(json.dumps(summary, indent=2))
