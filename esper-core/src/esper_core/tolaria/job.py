"""A whole ``esper run`` job: run directory, telemetry, episodes, baseline and summary."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import structlog

from esper_core.config import dump_toml, read_toml
from esper_core.contracts.decisions import Decision
from esper_core.contracts.events import RunEnded, RunStarted, TelemetryEvent
from esper_core.contracts.protocols import PolicyTrainingContext, Sink, Stateful, Task
from esper_core.contracts.specs import TrainingOption
from esper_core.errors import CheckpointError, ConfigError, EsperError, PluginError
from esper_core.files import write_atomic, write_json
from esper_core.plugins.blame import blame, blame_plugin_code, module_of, one_line
from esper_core.plugins.registry import Catalog
from esper_core.setup.policies import policy_context
from esper_core.setup.resolve import ResolvedRun
from esper_core.setup.tasks import prepare_task
from esper_core.setup.training_options import check_training_options, resume_extension
from esper_core.storage.outputs import distinct_sink_paths
from esper_core.storage.run_checkpoint import (
    list_checkpoints,
    load_run_checkpoint,
    resume_difference,
    save_run_checkpoint,
)
from esper_core.storage.rundir import CHECKPOINTED_FILE, CHECKPOINTS_DIR, CONFIG_FILE, MODEL_FILE, SUMMARY_FILE
from esper_core.telemetry.hub import TelemetryHub
from esper_core.telemetry.jsonl import EVENTS_FILE, EventsLost, last_epoch
from esper_core.tolaria import distributed_run
from esper_core.tolaria.baseline import Baseline
from esper_core.tolaria.episode import EpisodeResult, HostEpisode, save_model
from esper_core.tolaria.interrupts import RunInterrupted, stop_on_signal
from esper_core.tolaria.training_session import TrainingSession

logger = structlog.get_logger(__name__)



def _open_sinks(resolved: ResolvedRun, run_dir: Path) -> TelemetryHub:
    sinks: list[Sink] = []
    with distinct_sink_paths():  # two sinks never write one file
        for spec in resolved.sinks:
            try:
                options = resolved.config.telemetry_options.get(spec.name, {})
                sinks.append(spec.factory(run_dir=run_dir, options=options))
            except Exception as exc:
                for sink in sinks:
                    sink.close()
                if isinstance(exc, EsperError):
                    raise
                raise PluginError(f"telemetry sink {spec.name!r} failed to start: "
                                  f"{type(exc).__name__}: {exc}") from exc
    return TelemetryHub(sinks)


def execute_run(resolved: ResolvedRun, catalog: Catalog, run_dir: Path, *, resume: bool = False) -> dict[str, Any]:
    """Run every episode (and the baseline) — or train a learned policy — write the run
    directory and return the summary."""
    # Bound for exactly this call, however it ends: a run refused early (a bad option, a task
    # that fails to build) must not stamp its id on the caller's later log records.
    with structlog.contextvars.bound_contextvars(run_id=run_dir.name):
        return _execute_run(resolved, catalog, run_dir, resume=resume)


def _execute_run(resolved: ResolvedRun, catalog: Catalog, run_dir: Path, *, resume: bool) -> dict[str, Any]:
    started = time.perf_counter()
    config = resolved.config
    run_id = run_dir.name
    with blame_plugin_code("while building the task"):
        device, task, slot_names = prepare_task(resolved)
    options = dict(config.policy_options)
    training = resolved.policy.learned and "checkpoint" not in options
    world = 1
    if distributed_run.launched_with_several_processes():
        if training or resume:
            raise ConfigError("a multi-process (torchrun) run trains hosts under a fixed controller; "
                              f"{'--resume' if resume else 'training a learned policy'} runs in one process")
        rank, world = distributed_run.init_process_group(device)
        task = distributed_run.ShardedTask(task, rank=rank, world_size=world)
    check_training_options(resolved.policy, catalog, options, training=training)
    extension = resume_extension(resolved.policy) if training else None
    if resume:
        _refuse_changed_config(run_dir, resolved, extension)
    if resume and (run_dir / SUMMARY_FILE).exists():
        _refuse_finished(run_dir, extension, options)
    if resume and not training and not list_checkpoints(run_dir):
        _refuse_lost_checkpoints(run_dir, config.telemetry_options.get("jsonl", {}).get("path"))
    context = policy_context(resolved, slot_names, options)
    if training:
        assert resolved.policy.trainer is not None
        with blame("policy", resolved.policy.name, module_of(resolved.policy.trainer), "its trainer factory"):
            trainer = resolved.policy.trainer(context=PolicyTrainingContext(policy=context, device=device,
                                                                            resolved=resolved, resume=resume))
    else:
        with blame("policy", resolved.policy.name, module_of(resolved.policy.factory), "its factory"):
            policy = resolved.policy.factory(context=context)
    if not resume:
        # Written only once the task and policy exist, so a bad option leaves --out empty for a retry.
        write_atomic(run_dir / CONFIG_FILE, dump_toml(resolved.to_toml_dict()))

    restored = None
    if resume and not training:
        latest = list_checkpoints(run_dir)
        if latest:
            restored = load_run_checkpoint(latest[-1], resolved=resolved, slot_names=slot_names)
            if not isinstance(policy, Stateful):
                raise ConfigError(f"policy {resolved.policy.name!r} keeps no checkpointable state "
                                  "(no state_dict/load_state_dict), so its run cannot be resumed")
            logger.info("resuming", checkpoint=str(latest[-1]), episode=restored["episode"],
                        epoch=restored["epoch"])

    baseline = None
    if config.compare_baseline and not training:
        # Begun before the sinks open, so a baseline process forked here holds none of their files.
        baseline = Baseline.begin(resolved, catalog, task, slot_names, device=device,
                                  use_cache=config.baseline_cache, alongside=None if world == 1 else False)
    try:
        hub = _open_sinks(resolved, run_dir)
    except BaseException:
        if baseline is not None:
            baseline.cancel()
        raise

    begun = not resume

    def begin() -> None:
        """A resume's first change to the run directory, made once every check that can refuse it
        has passed (see :func:`_begin_resume`); nothing for a new run. Called before the first
        event and before the results are written, whichever comes first."""
        nonlocal begun
        if not begun:
            begun = True
            _begin_resume(run_dir, resolved, hub, restored=restored, rewind=not training)

    def emit(event: TelemetryEvent) -> None:
        begin()
        hub.emit(attrs.evolve(event, run_id=run_id))

    averaging = distributed_run.install_gradient_averaging() if world > 1 else None
    try:
        if restored is None:
            emit(RunStarted(task=resolved.task.name, policy=resolved.policy.name, seed=config.seed,
                            config=resolved.to_toml_dict()))
        if training:
            # The trainer checks session.stop after each of its checkpoints (TrainingSession.checkpointed).
            with stop_on_signal("the next training checkpoint") as stop, \
                    blame_plugin_code("during the run", keep=(RunInterrupted,)):
                session = TrainingSession(resolved=resolved, run_dir=run_dir, device=device, emit=emit,
                                          resume=resume, stop=stop)
                summary = {"run_id": run_id, "task": resolved.task.name, "policy": resolved.policy.name,
                           "seed": config.seed, "device": device, "epochs": resolved.epochs, "training": True,
                           **trainer.train(session=session)}
        else:
            with stop_on_signal() as stop, blame_plugin_code("during the run", keep=(RunInterrupted,)):
                finished, last = _run_episodes(resolved, task, policy, run_dir=run_dir, hub=hub, emit=emit,
                                               slot_names=slot_names, restored=restored, stop=stop, world=world)
            begin()  # a resumed episode that was already over emits nothing before its results
            architecture = save_model(last, run_dir / MODEL_FILE, task=resolved.task.name,
                                      blueprint_keys=resolved.blueprint_keys)
            summary = _summary(resolved, run_id, device, [*finished, last.to_dict()])
            if world > 1:
                digest = distributed_run.model_digest(last.model, architecture)
                summary["distributed"] = {"world_size": world,
                                          "model_sha256": distributed_run.gather_digests(digest)}
            if baseline is not None:
                summary["baseline"] = baseline.finish()
        begin()
        summary["wall_seconds"] = round(time.perf_counter() - started, 3)
        write_json(run_dir / SUMMARY_FILE, summary)
        emit(RunEnded(episode=summary.get("episodes", 1) - 1, epoch=resolved.epochs, summary=summary))
    finally:
        if baseline is not None:
            baseline.cancel()
        if averaging is not None:
            averaging.remove()
        hub.close()
    return summary


def _begin_resume(run_dir: Path, resolved: ResolvedRun, hub: TelemetryHub, *, restored: dict[str, Any] | None,
                  rewind: bool) -> None:
    """What a resume changes in its run directory, done only once the resume is under way — the
    run checkpoint loaded, checked and restored into the episode and policy, or a trainer's own
    checkpoint loaded — so a refused resume leaves every file as it was (the lock aside):

    * the telemetry sinks drop what they recorded after the checkpoint (``rewind``: an episode
      run; everything, with no checkpoint yet), or the resume is refused naming the lost events;
    * ``config.toml`` is rewritten only where its content changes: what
      :func:`_refuse_changed_config` lets a resume change — ``out`` (the directory was moved or
      copied: it then records where the run now is), ``checkpoint_keep``, and the trainer's
      ``extends_on_resume`` option. An unchanged configuration is not rewritten, not even to
      reorder its keys.
    """
    if rewind:
        try:
            hub.rewind(restored["python"]["telemetry"] if restored is not None else None)
        except EventsLost as exc:
            raise CheckpointError(f"--resume {str(run_dir)!r} refused: {_lost(exc, restored)}") from None
    text = dump_toml(resolved.to_toml_dict())
    try:
        same = read_toml(run_dir / CONFIG_FILE) == tomllib.loads(text)
    except ConfigError:  # unreadable now: write the run's own configuration over it
        same = False
    if not same:
        write_atomic(run_dir / CONFIG_FILE, text)


def _lost(exc: EventsLost, restored: dict[str, Any] | None) -> str:
    after = f"after epoch {exc.last[1]} of episode {exc.last[0]}" if exc.last else "from the start"
    until = f" up to epoch {restored['epoch']} of episode {restored['episode']}" if restored else ""
    return (f"{str(exc.path)!r} is shorter than its checkpoint recorded ({exc.size} of {exc.expected} bytes): "
            f"the events {after}{until} were lost; restore the file, or start a new run")


def _refuse_finished(run_dir: Path, extension: TrainingOption | None, options: dict[str, Any]) -> None:
    """A finished run is not resumed: it would only rewrite its results. A finished training
    run may continue when the resume asks for a larger value of its trainer's ``extension``
    option (declared ``extends_on_resume``) than its summary records."""
    if extension is not None:
        try:
            done = json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8")).get(extension.name)
        except (OSError, ValueError, RecursionError, AttributeError):
            done = None
        wanted = options.get(extension.name)
        if type(done) is int and type(wanted) is int and wanted > done:
            return
        more = f" its {done} {extension.name}" if type(done) is int else ""
        raise ConfigError(f"--resume {str(run_dir)!r}: that run already finished{more} ({SUMMARY_FILE} "
                          f"exists); to train further, resume with a larger {extension.flag}")
    raise ConfigError(f"--resume {str(run_dir)!r}: that run already finished ({SUMMARY_FILE} exists)")


def _refuse_changed_config(run_dir: Path, resolved: ResolvedRun, extension: TrainingOption | None) -> None:
    """A resumed run continues under the configuration it started with: its checkpoints, its
    events and its summary all belong to that one. Checked against the run directory's
    ``config.toml`` before anything is written, so a refused resume leaves the directory as it
    was (a plain ``--resume`` still works). The one option that may change is the trainer's
    ``extends_on_resume`` option (train further); where the run directory is and how many
    checkpoints are kept do not change the run either (a resume records them in ``config.toml``
    once it is under way: :func:`_begin_resume`)."""
    if not (run_dir / CONFIG_FILE).is_file():
        return  # nothing recorded to compare with, and nothing of the run's to overwrite
    difference = resume_difference(read_toml(run_dir / CONFIG_FILE), resolved, extension,
                                   saved_in=f"its {CONFIG_FILE}")
    if difference is not None:
        more = f" (only {extension.flag} may change, to train further)" if extension is not None else ""
        raise ConfigError(f"--resume {str(run_dir)!r} refused: the run continues under the configuration it "
                          f"started with, and this changes it ({difference}); resume without the options that "
                          f"change it{more}, or start a new run")


def _refuse_lost_checkpoints(run_dir: Path, events_path: Any) -> None:
    """A resumed run with no checkpoint starts over. That is right for a run stopped before its
    first checkpoint (killed during epoch 1 of episode 0: it loses only that epoch), and wrong for
    a run whose checkpoints were deleted: starting over would truncate its events and write over
    what it recorded. The first checkpoint is written after epoch 1 of episode 0, and it alone
    creates ``checkpoints/``, so the run got past it when any of these shows:

    * ``.esper.checkpointed``, written with the first checkpoint beside ``checkpoints/``, exists
      (the one sign that does not depend on the run's telemetry sinks);
    * ``checkpoints/`` exists and is empty (a first write cut short leaves its temporary file);
    * the events file records an epoch after epoch 1 of episode 0 (runs from before the marker).
    """
    folder = run_dir / CHECKPOINTS_DIR
    marker = run_dir / CHECKPOINTED_FILE
    evidence = None
    if marker.exists():
        evidence = f"{CHECKPOINTED_FILE} is there, and only its first checkpoint writes it"
    elif folder.is_dir() and not any(folder.iterdir()):
        evidence = f"{CHECKPOINTS_DIR}/ is empty, and only a checkpoint creates it"
    else:
        paths = [run_dir / EVENTS_FILE, *([Path(events_path)] if isinstance(events_path, str) else [])]
        for path in paths:
            last = last_epoch(path) if path.is_file() else None
            if last is not None and last > (0, 1):
                evidence = f"{str(path)!r} records epoch {last[1]} of episode {last[0]}, after the first checkpoint"
                break
    if evidence is not None:
        raise CheckpointError(f"--resume {str(run_dir)!r} refused: the run's checkpoints are missing ({evidence}); "
                              f"starting over would overwrite what it recorded. Restore {CHECKPOINTS_DIR}/, "
                              "or start a new run in another directory")


def _run_episodes(resolved: ResolvedRun, task: Task, policy: Any, *, run_dir: Path, hub: TelemetryHub,
                  emit: Callable[[TelemetryEvent], None], slot_names: tuple[str, ...],
                  restored: dict[str, Any] | None, stop: list[int],
                  world: int = 1) -> tuple[list[dict[str, Any]], EpisodeResult]:
    """Every episode of the run, checkpointed after each epoch (from ``restored`` on, if given);
    returns the finished episodes' summaries before the last, and the last episode's result."""
    config = resolved.config
    finished: list[dict[str, Any]] = list(restored["python"]["finished"]) if restored else []
    first = restored["episode"] if restored else 0
    stateful = isinstance(policy, Stateful)

    def checkpoint(env: HostEpisode) -> None:
        if world > 1:
            distributed_run.average_buffers(env.model)
        state = env.state_dict()
        epoch = state["python"]["epoch"]
        save_run_checkpoint(run_dir, resolved=resolved, slot_names=slot_names, episode=env.episode,
                            epoch=epoch, episode_state=state, keep=config.checkpoint_keep,
                            extra={"policy": policy.state_dict() if stateful else None,
                                   "finished": list(finished), "telemetry": hub.positions()})
        if stop[0]:
            raise RunInterrupted(f"interrupted after epoch {epoch} of episode {env.episode}; the checkpoint "
                                 f"is written: continue with `esper run --resume {run_dir}`", signum=stop[0])

    result: EpisodeResult | None = None
    for episode in range(first, config.episodes):
        with HostEpisode(resolved, task, episode=episode, seed=config.seed + episode, emit=emit,
                         policy_name=resolved.policy.name, on_epoch_end=checkpoint) as env:
            if restored is not None and episode == first:
                _restore(env, policy, restored, resolved.policy.name)
                step = None if env.done else env.resume()
            else:
                policy.reset(episode=episode)
                step = env.start()
            while step is not None and not step.done:
                decision = _decide(policy, resolved.policy.name, step)
                step = env.step(distributed_run.broadcast_decision(decision) if world > 1 else decision)
            result = env.result()
        hub.flush()
        if episode < config.episodes - 1:
            finished.append(result.to_dict())
    assert result is not None
    return finished, result


def _restore(env: HostEpisode, policy: Any, restored: dict[str, Any], name: str) -> None:
    """Continue ``env`` and ``policy`` from a run checkpoint. The checkpoint's state passed the
    allow-list but may still not fit (a damaged or crafted file): that is a CheckpointError, not
    a traceback from deep inside the episode."""
    try:
        env.load_state_dict(restored)
    except EsperError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"the run checkpoint after epoch {restored['epoch']} does not fit this run "
                              f"({one_line(exc)}); delete it to resume from the one before, or start a new run"
                              ) from None
    with blame("policy", name, module_of(type(policy)), "load_state_dict"):
        policy.load_state_dict(restored["python"].get("policy"))


def _decide(policy: Any, name: str, step: Any) -> Decision:
    """The policy's decision; a policy that raises or returns something else is a PluginError
    naming it (the mask check later refuses decisions that are well-formed but not allowed)."""
    try:
        decision = policy.decide(report=step.report, mask=step.mask)
    except EsperError:
        raise
    except Exception as exc:
        raise PluginError(f"policy {name!r} raised in decide() after epoch {step.report.epoch}: "
                          f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(decision, Decision):
        raise PluginError(f"policy {name!r} returned {type(decision).__name__} from decide(), not a Decision")
    return decision


def _summary(resolved: ResolvedRun, run_id: str, device: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    last = results[-1]
    summary: dict[str, Any] = {
        "run_id": run_id,
        "task": resolved.task.name,
        "policy": resolved.policy.name,
        "seed": resolved.config.seed,
        "device": device,
        "epochs": resolved.epochs,
        "episodes": len(results),
        **{k: v for k, v in last.items() if k not in {"episode", "policy", "epochs", "wall_seconds"}},
    }
    if len(results) > 1:
        summary["per_episode"] = list(results)
    return summary
