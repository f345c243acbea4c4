"""``esper run``: train hosts while a controller grows them."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

import click

from esper_core.cli.app import AppState
from esper_core.cli.params import PathParam
from esper_core.config import RunConfig, parse_key_values
from esper_core.errors import ConfigError

#: The parameter names under which the training options' flags reach the command.
_TRAINING_FLAG = "training_option__"


class RunCommand(click.Command):
    """``esper run``, plus a flag for each training option an installed learned policy declares
    (``PolicySpec.training_options``): core names none of them. They are added when the command
    parses or prints its help, so ``esper --help`` never builds the catalog."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = list(self.params)
        state = ctx.find_object(AppState)
        if state is not None:
            taken = {flag for p in params for flag in (*p.opts, *p.secondary_opts)}
            params += _training_flags(state, taken)
        help_option = self.get_help_option(ctx)
        return params + ([help_option] if help_option is not None else [])


def _training_flags(state: AppState, taken: set[str]) -> list[click.Option]:
    from esper_core.setup.training_options import declared_training_options

    flags = []
    for declared in declared_training_options(state.catalog).values():
        option = declared.option
        if option.flag in taken:  # a policy may not shadow one of the command's own flags
            continue
        default = "" if option.default is None or option.type is bool else f" (default {option.default})"
        names = f"{option.flag}/--no-{option.flag[2:]}" if option.type is bool else option.flag
        flags.append(click.Option([names, _TRAINING_FLAG + option.name], default=None,
                                  type=None if option.type is bool else option.type,
                                  help=f"{', '.join(declared.policies)}: {option.help}{default}."))
    return flags


@click.command("run", cls=RunCommand)
@click.option("--task", default=None, help="Task name (default: shapes, the embedded image task).")
@click.option("--policy", default=None, help="Controller: heuristic (default), random, noop, or a plugin's.")
@click.option("--epochs", type=int, default=None, help="Epochs per episode (default: the task's).")
@click.option("--episodes", type=int, default=None, help="Episodes to run (default 1).")
@click.option("--slots", default=None, help="Comma-separated injection points to give slots.")
@click.option("--blueprints", default=None, help="Comma-separated blueprints the controller may use.")
@click.option("--blueprint-library", default=None,
              help="Blueprint library file from `esper discover`: adds its blueprints to the catalog.")
@click.option("--max-seeds", type=int, default=None,
              help="Most live seeds at once (default: the task's, e.g. 3 for shapes).")
@click.option("--param-budget", type=int, default=None, help="Most seed parameters in total.")
@click.option("--seed", type=int, default=None, help="Random seed (default 0).")
@click.option("--device", default=None, help="auto (default), cpu, cuda or cuda:N.")
@click.option("--reward-preset", default=None, help="shaped (default), sparse or minimal.")
@click.option("--telemetry", default=None, help="Comma-separated telemetry sinks (default: jsonl).")
@click.option("--observers", default=None,
              help="Comma-separated training observers (default: every installed one; '' for none).")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (default 0: automatic).")
@click.option("--deterministic/--no-deterministic", default=None, help="Force deterministic kernels.")
@click.option("--compare-baseline/--no-compare-baseline", default=None,
              help="Also train the same host with the noop policy and compare (default: on).")
@click.option("--baseline-cache/--no-baseline-cache", default=None,
              help="Reuse the baseline of an identical earlier run (same config, code, torch, threads, "
                   "CPU; default: on).")
@click.option("--data", "data_path", default=None,
              help="Data file for tasks that read one (task option 'path', e.g. --task textfile).")
@click.option("--data-dir", default=None, help="Dataset folder (task option 'data_dir', e.g. CIFAR).")
@click.option("--download", is_flag=True, default=None,
              help="Let the task download its dataset (task option 'download'); never implicit.")
@click.option("--task-option", "task_option", multiple=True, metavar="KEY=VALUE",
              help="Any task option; repeatable. Values are parsed as TOML (numbers, true/false).")
@click.option("--policy-option", "policy_option", multiple=True, metavar="KEY=VALUE",
              help="Any policy option ([policy] table); repeatable. Values are parsed as TOML.")
@click.option("--policy-checkpoint", type=PathParam(path_type=Path, dir_okay=False), default=None,
              help="Run a trained policy from this checkpoint instead of training one.")
@click.option("--resume", "resume_dir", type=PathParam(path_type=Path, file_okay=False), default=None,
              help="Continue the run in RUN_DIR from its latest checkpoint, exactly (config from RUN_DIR).")
@click.option("--config", "config_path", type=PathParam(path_type=Path, dir_okay=False), default=None,
              help="TOML config file; command-line options override it.")
@click.option("--out", default=None, help="Run directory (default runs/<timestamp>-<task>-<policy>/).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table.")
@click.pass_obj
def run_command(state: AppState, config_path: Path | None, as_json: bool, data_path: str | None,
                data_dir: str | None, download: bool | None, task_option: tuple[str, ...],
                policy_option: tuple[str, ...], policy_checkpoint: Path | None,
                resume_dir: Path | None, **options: object) -> None:
    """Run episodes: train a host for E epochs while the controller grows it."""
    from esper_core.presentation.run_report import format_summary
    from esper_core.setup.resolve import resolve_run
    from esper_core.setup.training_options import declared_training_options
    from esper_core.storage.rundir import create_run_dir, default_run_dir, first_missing, own_run_dir
    from esper_core.tolaria.interrupts import RunInterrupted
    from esper_core.tolaria.job import execute_run

    task_options = parse_key_values(task_option)
    for key, flag, value in (("path", "--data", data_path), ("data_dir", "--data-dir", data_dir),
                             ("download", "--download", download)):
        _set_by_flag(task_options, key, value, flag=flag, option="--task-option")
    policy_options = parse_key_values(policy_option, flag="--policy-option")
    declared = declared_training_options(state.catalog) if any(k.startswith(_TRAINING_FLAG) for k in options) else {}
    for key in [k for k in options if k.startswith(_TRAINING_FLAG)]:
        name = key.removeprefix(_TRAINING_FLAG)
        _set_by_flag(policy_options, name, options.pop(key), flag=declared[name].option.flag,
                     option="--policy-option")
    if policy_checkpoint is not None:
        _set_by_flag(policy_options, "checkpoint", str(policy_checkpoint), flag="--policy-checkpoint",
                     option="--policy-option")
        if options.get("policy") is None:
            from esper_core.storage.policy_checkpoint import load_policy_checkpoint

            options["policy"] = load_policy_checkpoint(policy_checkpoint)["policy"]
    if resume_dir is not None:
        config_path = _resume_config(resume_dir, config_path, options)
    config = RunConfig.from_sources(config_path, options, task_options=task_options,
                                    policy_options=policy_options)
    resolved = resolve_run(config, state.catalog)
    if resolved.policy.learned and "checkpoint" not in config.policy_options:
        _refuse_unused_when_training(options, resolved.policy.name)
    from esper_core.tolaria.distributed_run import launch_rank

    rank = launch_rank()  # torchrun: only rank 0 writes the run directory
    created = None
    if rank != 0:
        run_dir = Path(tempfile.mkdtemp(prefix=f"esper-rank{rank}-"))
    elif resume_dir is not None:
        run_dir = resume_dir
    else:
        out = Path(config.out) if config.out else default_run_dir(resolved.task.name, resolved.policy.name)
        created = first_missing(out)
        run_dir = create_run_dir(out)
    owner = own_run_dir(run_dir, resume=resume_dir is not None, created=created) if rank == 0 \
        else contextlib.nullcontext()
    try:
        with owner:
            summary = execute_run(resolved, state.catalog, run_dir, resume=resume_dir is not None)
    except RunInterrupted as exc:
        click.echo(f"Interrupted: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None
    finally:
        if rank != 0:
            shutil.rmtree(run_dir, ignore_errors=True)
    if rank != 0:
        return
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(format_summary(summary))
        click.echo(f"\nrun directory: {run_dir}")


def _refuse_unused_when_training(options: dict[str, object], policy: str) -> None:
    """Refuse the flags a training run of a learned policy does not use: it trains --rounds ×
    --envs episodes of its own, and compares with other policies in ``esper evaluate``."""
    if options.get("episodes") is not None:
        raise ConfigError(f"--episodes does not apply when training policy {policy!r}: it trains --rounds × "
                          "--envs episodes; set those (or run a trained policy with --policy-checkpoint)")
    if options.get("compare_baseline"):
        raise ConfigError(f"--compare-baseline does not apply when training policy {policy!r}: compare the "
                          "trained policy with the baseline in `esper evaluate --policy-checkpoint RUN/policy.pt`")


def _set_by_flag(table: dict[str, object], key: str, value: object, *, flag: str, option: str) -> None:
    """``table[key] = value`` for a flag that was given (not None), refusing one that ``option``
    (``--task-option``/``--policy-option``) set too: one of the two would be dropped silently."""
    if value is None:
        return
    if key in table:
        raise ConfigError(f"{flag} and {option} {key}=... both set {key!r}; give one")
    table[key] = value


def _resume_config(resume_dir: Path, config_path: Path | None, options: dict[str, object]) -> Path:
    """The config a resumed run starts from: the run directory's own, unless --config is given."""
    from esper_core.storage.rundir import CHECKPOINTS_DIR, CONFIG_FILE, LOCK_FILE, SUMMARY_FILE, is_resumable_run_dir
    from esper_core.telemetry.jsonl import EVENTS_FILE

    saved = resume_dir / CONFIG_FILE
    if not saved.is_file():
        raise ConfigError(f"--resume {str(resume_dir)!r} is not a run directory (no {CONFIG_FILE})")
    if not is_resumable_run_dir(resume_dir):
        # Resuming would write the run's files over whatever the folder holds.
        written = f"{LOCK_FILE}, {CHECKPOINTS_DIR}/, {SUMMARY_FILE}, {EVENTS_FILE}"
        raise ConfigError(f"--resume {str(resume_dir)!r} is not a run directory: it holds a {CONFIG_FILE} but none "
                          f"of the files a run writes ({written}); to start a run from that configuration, "
                          f"pass --config {str(saved)!r}")
    out = options.get("out")
    if out is not None and Path(str(out)).resolve() != resume_dir.resolve():
        raise ConfigError(f"--resume {str(resume_dir)!r} continues that run in place; --out {out!r} "
                          "names another directory")
    options["out"] = str(resume_dir)
    return config_path or saved
