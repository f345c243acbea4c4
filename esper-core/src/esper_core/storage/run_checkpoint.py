"""Run checkpoints: the whole state of an ``esper run`` after an epoch, for exact resume.

One file per epoch under ``RUN_DIR/checkpoints/`` (``ep0000-epoch00007.pt``), written
atomically (temporary file, fsync, rename: a kill mid-write leaves the previous one intact);
only the last ``checkpoint_keep`` are kept. A file is a ``torch.save`` dictionary:

* a header the loader checks before anything else — format and version, the run configuration,
  the blueprint catalog, the slot names and the observation schema — refusing a checkpoint
  written by another run (the checks are :func:`~esper_core.storage.policy_checkpoint.check_compatible`'s);
* tensors: the model's weights (host, live and fossilized seeds) and every optimizer's state;
* ``python``: a pickle of the bookkeeping no tensor format holds — each slot's lifecycle stage,
  blueprint and counters, the episode's RNG streams (Python, NumPy, torch), its seed ledger and
  counters, the policy's and observers' state (:class:`~esper_core.contracts.Stateful`), the
  summaries of finished episodes and the telemetry sinks' positions — with its tensors moved
  out to ``python_tensors``.

The header and tensors load with ``weights_only=True``; the pickle is opened only once the
header matched, so a file of another kind is refused without unpickling it, and then by
:mod:`~esper_core.storage.safe_pickle`'s unpickler, which resolves only an allow-list of data
classes: a crafted checkpoint cannot run code, it is refused naming what it asked for.

Resume rebuilds the model from the recorded lifecycle (a seed module from its blueprint for
every slot that holds one), then loads weights and optimizer states, then the RNG streams: the
continued run draws exactly the numbers the uninterrupted one would have.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import structlog
import torch
from torch import nn

from esper_core.contracts.observation import OBSERVATION_SCHEMA_VERSION
from esper_core.contracts.specs import BlueprintSpec, TrainingOption
from esper_core.contracts.stages import SeedStage
from esper_core.errors import CheckpointError, ConfigError
from esper_core.files import UnreadableTorchFile, atomic_file, load_torch_file
from esper_core.kasmina.model import MorphogeneticModel
from esper_core.kasmina.slot import SEEDED_STAGES, SlotState
from esper_core.plugins.blame import blame, module_of
from esper_core.setup.effective_config import effective_config
from esper_core.storage import safe_pickle as state_pickle
from esper_core.storage.policy_checkpoint import check_compatible, check_header
from esper_core.storage.rundir import CHECKPOINTED_FILE, CHECKPOINTS_DIR

logger = structlog.get_logger(__name__)

FORMAT = "esper-run-checkpoint"
# 2: the bookkeeping's tensors travel beside its pickle (state_pickle), not inside it.
FORMAT_VERSION = 2
_HEADER: dict[str, type] = {"run_config": dict, "blueprint_catalog": list, "slot_names": list,
                            "observation_version": int, "episode": int, "epoch": int, "model": dict,
                            "optimizers": dict}
_NAME = re.compile(r"^ep(\d{4,})-epoch(\d{5,})\.pt$")


def checkpoint_name(episode: int, epoch: int) -> str:
    return f"ep{episode:04d}-epoch{epoch:05d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first (by episode, then epoch)."""
    folder = run_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append(((int(match[1]), int(match[2])), path))
    return [path for _, path in sorted(found)]


# ---------------------------------------------------------------------- architecture
def architecture_state(model: MorphogeneticModel) -> list[dict[str, Any]]:
    """Every slot's lifecycle: stage, blueprint, α and counters (no tensors but the
    gradient-ratio EMA; the seed's last output is dropped, the next forward sets it)."""
    return [
        {
            "slot": slot.name,
            "stage": slot.stage.name,
            "blueprint": slot.blueprint.key if slot.blueprint is not None else None,
            "alpha": slot.alpha,
            "state": attrs.evolve(slot.state, last_seed_output=None,
                                  contributions=list(slot.state.contributions)),
        }
        for slot in model.all_slots()
    ]


def rebuild_architecture(model: MorphogeneticModel, records: Sequence[Mapping[str, Any]],
                         blueprints: Sequence[BlueprintSpec]) -> None:
    """Give a freshly built model the recorded lifecycle: a new seed module (from its
    blueprint, weights to be loaded next) in every slot that holds one."""
    _check_records(records)
    if [r["slot"] for r in records] != list(model.slot_names):
        raise CheckpointError(f"the checkpoint's slots ({', '.join(r['slot'] for r in records)}) "
                              f"are not this run's ({', '.join(model.slot_names)})")
    by_key = {b.key: b for b in blueprints}
    device, dtype = model.device_and_dtype()
    for record in records:
        slot = model.slot(record["slot"])
        stage = SeedStage[record["stage"]]
        spec = None
        if record["blueprint"] is not None:
            spec = by_key.get(record["blueprint"])
            if spec is None:
                raise CheckpointError(f"the checkpoint's slot {slot.name} holds blueprint "
                                      f"{record['blueprint']!r}, which this run's catalog lacks")
        seed = None
        if stage in SEEDED_STAGES:
            if spec is None:
                raise CheckpointError(f"the checkpoint's slot {slot.name} is {stage.name} "
                                      "without a blueprint")
            with blame("blueprint", spec.key, module_of(spec.factory), "its factory"):
                module = spec.factory(width=slot.point.width)
            if not isinstance(module, nn.Module):
                raise CheckpointError(f"blueprint {spec.key} built {type(module).__name__}, "
                                      "not an nn.Module")
            seed = module.to(device=device, dtype=dtype)
        slot.seed = seed
        slot.blueprint = spec
        slot.stage = stage
        slot.alpha = record["alpha"]
        slot.forced_alpha = None
        model.attach_seed_path_stats(slot)  # buffers the state dict to be loaded holds
        if record["state"] is not None:  # None (an exported model): fresh counters will do
            slot.state = record["state"]


def _check_records(records: Any) -> None:
    """Refuse lifecycle records of the wrong shape (a damaged or crafted file) with the record
    and field named, before any of them is acted on."""
    if not isinstance(records, list | tuple):
        raise CheckpointError(f"the recorded architecture is {type(records).__name__}, not a list of slots")
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise CheckpointError(f"architecture record {i} is {type(record).__name__}, not a table")
        problems = []
        if not isinstance(record.get("slot"), str):
            problems.append("slot is not a name")
        if record.get("stage") not in SeedStage.__members__:
            problems.append(f"stage {record.get('stage')!r} is not a lifecycle stage")
        if record.get("blueprint") is not None and not isinstance(record.get("blueprint"), str):
            problems.append("blueprint is not a name")
        alpha = record.get("alpha")
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 <= alpha <= 1.0:
            problems.append(f"alpha {alpha!r} is not a number in [0, 1]")
        if record.get("state") is not None and not isinstance(record.get("state"), SlotState):
            problems.append("its counters are not slot state")
        if problems:
            raise CheckpointError(f"architecture record {i} is malformed: {'; '.join(problems)}")


# ---------------------------------------------------------------------- files
def _header(resolved: Any, slot_names: Sequence[str]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "run_config": comparable_config(resolved.to_toml_dict()),
        "blueprint_catalog": list(resolved.blueprint_keys),
        "slot_names": list(slot_names),
        "observation_version": OBSERVATION_SCHEMA_VERSION,
    }


def comparable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run's configuration as a resume compares it: every table, less what may change
    between the crash and the resume without changing the run (where the run directory now
    is, how many checkpoints are kept)."""
    run = config.get("run", {})
    if isinstance(run, Mapping):
        run = {k: v for k, v in run.items() if k not in {"out", "checkpoint_keep"}}
    return {**config, "run": run}


def save_run_checkpoint(run_dir: Path, *, resolved: Any, slot_names: Sequence[str], episode: int,
                        epoch: int, episode_state: Mapping[str, Any], extra: Mapping[str, Any],
                        keep: int) -> Path:
    """Write the checkpoint after ``epoch`` of ``episode`` and delete all but the last ``keep``.

    ``episode_state`` is :meth:`HostEpisode.state_dict`; ``extra`` (policy state, finished
    episodes, telemetry positions) joins its ``python`` part.
    """
    folder = run_dir / CHECKPOINTS_DIR
    path = folder / checkpoint_name(episode, epoch)
    python, python_tensors = state_pickle.dumps({**episode_state["python"], **extra})
    try:  # what resume would refuse is refused now, at the first checkpoint, not hours later
        state_pickle.loads(python, python_tensors)
    except state_pickle.StateNotAllowed as exc:
        raise CheckpointError(f"cannot checkpoint the run: its state holds {exc.name}, which run "
                              "checkpoints do not load; a policy's or observer's state_dict must return "
                              "plain data (numbers, strings, lists, dicts, tensors)") from None
    data = {
        **_header(resolved, slot_names),
        "episode": episode,
        "epoch": epoch,
        "model": episode_state["model"],
        "optimizers": episode_state["optimizers"],
        "python": python,
        "python_tensors": python_tensors,
    }
    previous = list_checkpoints(run_dir)
    try:
        folder.mkdir(exist_ok=True)
        with atomic_file(path) as handle:
            torch.save(data, handle)
        marker = run_dir / CHECKPOINTED_FILE
        if not marker.exists():
            marker.write_text(f"{path.name}\n", encoding="utf-8")
    except (OSError, RuntimeError) as exc:
        # torch.save reports a full disk as a RuntimeError from its zip writer, not an OSError.
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc).splitlines() or [""])[0]
        kept = f"; the previous checkpoint {previous[-1].name} is intact" if previous else ""
        raise CheckpointError(f"cannot write checkpoint {str(path)!r}: {why or type(exc).__name__}{kept} "
                              f"(free space, then continue with `esper run --resume {run_dir}`)") from None
    older = [p for p in previous if p != path]
    for old in older[: max(0, len(older) + 1 - keep)]:
        old.unlink(missing_ok=True)
    return path


def _damaged_hint(path: Path) -> str:
    """What to do about a damaged checkpoint: resume from an earlier one where there is one. With
    none, deleting it would leave a run past its first checkpoint with no checkpoint at all, which
    ``--resume`` refuses (it would start over on top of what the run recorded)."""
    earlier = list_checkpoints(path.parent.parent)
    if path in earlier and earlier.index(path) > 0:
        return "; delete it to resume from the checkpoint before it, or start a new run"
    return "; it is the run's only checkpoint, so the run cannot continue: start a new run"


def load_run_checkpoint(path: Path, *, resolved: Any, slot_names: Sequence[str]) -> dict[str, Any]:
    """Read and check a run checkpoint for ``resolved``; every problem is a one-line error."""
    hint = _damaged_hint(path)
    try:
        data = load_torch_file(path)
    except UnreadableTorchFile as exc:
        # exc says what is wrong (empty, truncated, not torch's, holding Python objects), in words
        raise CheckpointError(f"run checkpoint {str(path)!r} cannot be read: {exc}{hint}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an Esper run checkpoint{hint}")
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"run checkpoint {str(path)!r} has format version "
                              f"{data.get('format_version')!r}; this Esper reads version {FORMAT_VERSION}")
    try:
        check_header(data, _HEADER, where=f"run checkpoint {str(path)!r}")
        check_compatible(data, path=path, blueprint_keys=resolved.blueprint_keys, slot_names=slot_names,
                         observation_version=OBSERVATION_SCHEMA_VERSION, what="run checkpoint",
                         verb="was written")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    difference = resume_difference(data["run_config"], resolved, None, saved_in="the checkpoint")
    if difference is not None:
        raise CheckpointError(f"run checkpoint {str(path)!r} was written under another configuration "
                              f"({difference}); "
                              "resume with the run "
                              "directory's own config.toml")
    blob, tensors = data.get("python"), data.get("python_tensors")
    if not isinstance(blob, bytes) or not isinstance(tensors, list):
        raise CheckpointError(f"run checkpoint {str(path)!r} is corrupt (its state is missing){hint}")
    try:
        data["python"] = state_pickle.loads(blob, tensors)
    except state_pickle.StateNotAllowed as exc:
        raise CheckpointError(f"run checkpoint {str(path)!r} is refused: its state names {exc.name}, "
                              "which a run checkpoint never holds (a crafted or foreign file; nothing "
                              "from it was run)") from None
    except Exception as exc:
        raise CheckpointError(f"run checkpoint {str(path)!r} is corrupt (its state does not unpickle: "
                              f"{type(exc).__name__}){hint}") from None
    if not isinstance(data["python"], dict):
        raise CheckpointError(f"run checkpoint {str(path)!r} is corrupt (its state is "
                              f"{type(data['python']).__name__}, not a table){hint}")
    problem = _state_problem(data["python"])
    if problem:
        raise CheckpointError(f"run checkpoint {str(path)!r} is corrupt ({problem}){hint}")
    return data


_NUMBER = (int, float)
#: The bookkeeping's fields and their types (extra fields are left to their readers).
_STATE_FIELDS: dict[str, Any] = {
    "episode": int, "epoch": int, "done": bool, "architecture": list, "rng": dict, "curve": list,
    "total_reward": _NUMBER, "elapsed": _NUMBER, "start_accuracy": _NUMBER, "best": _NUMBER,
    "rollback_count": int, "observers": list, "finished": list, "telemetry": dict,
}


def _state_problem(python: Mapping[str, Any]) -> str | None:
    """What makes unpickled bookkeeping unusable — a missing or wrong-typed field, a curve of
    non-numbers, RNG states the generators refuse — or None. Checked at load so a file that
    passed the allow-list still fails here, in one line, not deep inside the resumed epoch."""
    for key, kind in _STATE_FIELDS.items():
        value = python.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"state field {key!r} is {'missing' if value is None else type(value).__name__}"
    if not all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in python["curve"]):
        return "the accuracy curve holds something other than numbers"
    try:
        _check_records(python["architecture"])
    except CheckpointError as exc:
        return str(exc)
    return _rng_problem(python["rng"])


def _rng_problem(rng: Mapping[str, Any]) -> str | None:
    """Try the recorded RNG states on the generators, then put the current ones back."""
    import random

    import numpy as np

    saved = (random.getstate(), torch.get_rng_state(), np.random.get_state())
    try:
        random.setstate(rng["python"])
        torch.set_rng_state(rng["torch"])
        if "numpy" in rng:
            np.random.set_state(rng["numpy"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        return f"its random-number states are not valid ({type(exc).__name__})"
    finally:
        random.setstate(saved[0])
        torch.set_rng_state(saved[1])
        np.random.set_state(saved[2])
    return None


def first_difference(saved: Mapping[str, Any], now: Mapping[str, Any], *, saved_in: str) -> str | None:
    """The first key (by table, then key) whose value differs between two configurations, in
    words; None when they agree."""
    for table in sorted(set(saved) | set(now)):
        a, b = saved.get(table, {}), now.get(table, {})
        if not isinstance(a, Mapping) or not isinstance(b, Mapping):
            if a != b:
                return f"{table}: {a!r} in {saved_in}, {b!r} now"
            continue
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return f"[{table}] {key}: {_shown(a, key)} in {saved_in}, {_shown(b, key)} now"
    return None


def _shown(table: Mapping[str, Any], key: str) -> str:
    return repr(table[key]) if key in table else "not set"


def resume_difference(recorded: Mapping[str, Any], resolved: Any, extension: TrainingOption | None, *,
                      saved_in: str) -> str | None:
    """The first way ``resolved`` differs from a configuration the run recorded (its
    ``config.toml``, a run checkpoint's header, or a training checkpoint's: see
    :meth:`~esper_core.tolaria.training_session.TrainingSession.refuse_other_run`) that a resume
    may not change, in words naming ``saved_in``; None when there is none. Options are compared
    by what they mean (:func:`effective_config`); where the run directory is, how many
    checkpoints are kept and the trainer's ``extension`` option may change."""
    saved = comparable_config(effective_config(recorded, resolved, recorded=True))
    now = comparable_config(effective_config(resolved.to_toml_dict(), resolved, recorded=False))
    if extension is not None:
        for config in (saved, now):
            policy = config.get("policy")
            if isinstance(policy, dict):
                config["policy"] = {k: v for k, v in policy.items() if k != extension.name}
    return first_difference(saved, now, saved_in=saved_in)
