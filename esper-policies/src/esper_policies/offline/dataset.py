"""Recorded episodes for offline learning: a versioned, sharded on-disk format.

Layout of a dataset directory (format ``esper-episodes``, version 1)::

    dataset.json          metadata: format, version, observation schema version and size, slot
                          names, blueprint catalog (the action space), task, topology, epochs,
                          the behaviour policy, base seed, the run configuration, reward terms
    episodes/000000.pt    one shard per finished episode, named by its episode number
                          (torch.save of plain tensors):
        obs (T, D) float32        observation before each decision (unnormalised layout values)
        next_obs (T, D) float32   observation after it (for the last step: the state it ended in)
        mask_ops (T, 5) bool, mask_slots (T, 5, S) bool, mask_blueprints (T, P) bool
        actions (T, 3) int64      op, slot, blueprint indices (slot/blueprint 0 when unused)
        rewards (T,) float32      total reward; reward_terms: {term name: (T,) float32}
        terminated (T,) bool, truncated (T,) bool
        episode, seed, final_accuracy, total_reward   (scalars)

Every shard is written to a temporary file and renamed into place, so a crash loses at most the
episode in progress. The episodes a dataset holds are the files of ``episodes/`` named as
:func:`shard_name` names them (:meth:`EpisodeDataset.episodes`, which ``esper collect`` and training
both read): hidden files (temporary files of an interrupted write) are ignored and any other
entry is refused, naming it. ``esper collect`` run again records exactly the episode numbers
below its ``--episodes`` that the dataset lacks (a shard deleted because it was damaged, or never
finished) and rewrites none it holds; training refuses a dataset that lacks an episode below its
last one, naming the missing numbers. Reading never loads the whole dataset: minibatches stream
from a few shards at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
import torch
from attrs import frozen

from esper_core.contracts.decisions import Op
from esper_core.contracts.observation import OBSERVATION_SCHEMA_VERSION
from esper_core.errors import ConfigError, DataError
from esper_core.options import INT_MAX, MAX_EPISODES, MAX_EPOCHS
from esper_core.sdk import (
    DATASET_FILE,
    EPISODES_DIR,
    UnreadableTorchFile,
    atomic_file,
    check_compatible,
    check_header,
    load_torch_file,
    read_input_file,
    write_json,
)
from esper_policies.encoding import N_OPS, MaskBatch

logger = structlog.get_logger(__name__)

FORMAT = "esper-episodes"
FORMAT_VERSION = 1
#: dataset.json is a few KiB; anything far larger is not one this code wrote.
MAX_METADATA_BYTES = 16 * 1024 * 1024
_METADATA_FIELDS: dict[str, type] = {"observation_version": int, "observation_size": int, "slot_names": list,
                                     "blueprint_catalog": list, "task": str, "topology": str, "policy": str,
                                     "seed": int, "epochs": int}
#: The range of each integer field (the seeds and epochs ``esper collect`` accepts).
_METADATA_RANGES: dict[str, tuple[int, int]] = {"observation_version": (1, INT_MAX), "observation_size": (1, INT_MAX),
                                                "seed": (0, INT_MAX), "epochs": (1, MAX_EPOCHS)}
_TENSORS = ("obs", "next_obs", "mask_ops", "mask_slots", "mask_blueprints", "actions", "rewards", "terminated",
            "truncated")


@frozen
class Batch:
    """A minibatch of transitions."""

    obs: torch.Tensor
    next_obs: torch.Tensor
    masks: MaskBatch
    actions: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor

    def __len__(self) -> int:
        return self.obs.shape[0]


#: what a damaged or missing shard's message tells the user to do
RERECORD = ("run the `esper collect` that recorded the dataset again (the same settings and --episodes): "
            "it records only the episodes the dataset lacks")
_SHARD_NAME = re.compile(r"[0-9]+\.pt")


def shard_name(index: int) -> str:
    return f"{index:06d}.pt"


def shard_index(name: str) -> int | None:
    """The episode number of a shard's file name (``000042.pt``: 42), or None for any name
    :func:`shard_name` does not give an episode ``esper collect`` can record (``backup.pt``,
    ``42.pt``, ``0000042.pt``, a number of ``MAX_EPISODES`` or more)."""
    if not _SHARD_NAME.fullmatch(name):
        return None
    index = int(name[:-3])
    return index if index < MAX_EPISODES and shard_name(index) == name else None


def describe_numbers(numbers: Sequence[int]) -> str:
    """Ascending episode numbers in words, runs of three or more shortened:
    ``episode 4``, ``episodes 0 and 1``, ``episodes 0, 3 to 7 and 9``."""
    if not numbers:
        return "no episodes"
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts: list[str] = []
    for run in runs:
        parts.extend([f"{run[0]} to {run[-1]}"] if len(run) > 2 else [str(n) for n in run])
    words = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    return f"episode{'s' if len(numbers) > 1 else ''} {words}"


class EpisodeDataset:
    """A dataset directory: metadata plus the complete episode shards found in it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        meta_path = self.path / DATASET_FILE
        if not meta_path.exists():
            raise DataError(f"{str(self.path)!r} is not an episode dataset (no {DATASET_FILE}); "
                            "record one with `esper collect`")
        # A regular file of at most 16 MiB (a pipe or a device named dataset.json is refused unopened).
        text = read_input_file(meta_path, label="episode dataset metadata", max_bytes=MAX_METADATA_BYTES,
                               error=DataError)
        try:
            self.metadata: dict[str, Any] = json.loads(text.decode("utf-8"))
        except ValueError as exc:  # bad JSON, or bytes that are not UTF-8
            raise DataError(f"episode dataset metadata {str(meta_path)!r} is unreadable: {exc}") from None
        except RecursionError:
            raise DataError(f"episode dataset metadata {str(meta_path)!r} is nested too deeply to read") from None
        if not isinstance(self.metadata, dict) or self.metadata.get("format") != FORMAT:
            raise DataError(f"{str(meta_path)!r} does not describe an Esper episode dataset")
        if self.metadata.get("format_version") != FORMAT_VERSION:
            raise DataError(f"episode dataset {str(self.path)!r} has format version "
                            f"{self.metadata.get('format_version')!r}; this Esper reads version {FORMAT_VERSION}")
        _check_metadata(self.metadata, where=f"episode dataset metadata {str(meta_path)!r}")

    @staticmethod
    def create(path: Path, metadata: Mapping[str, Any]) -> EpisodeDataset:
        """Start a dataset at ``path`` (which must not hold one), or return the existing one."""
        path.mkdir(parents=True, exist_ok=True)
        (path / EPISODES_DIR).mkdir(exist_ok=True)
        write_json(path / DATASET_FILE, {"format": FORMAT, "format_version": FORMAT_VERSION,
                                     "observation_version": OBSERVATION_SCHEMA_VERSION, **metadata})
        return EpisodeDataset(path)

    def episodes(self) -> dict[int, Path]:
        """The episodes the dataset holds: episode number -> shard, in episode order. The one
        reading of ``episodes/`` that ``esper collect`` (which records the numbers missing here)
        and training share. Hidden files (temporary files of an interrupted write) are ignored;
        any other entry whose name is not a shard's (:func:`shard_index`) is refused, naming it,
        rather than trained on as an episode or counted as one."""
        folder = self.path / EPISODES_DIR
        if not folder.is_dir():
            return {}
        held: dict[int, Path] = {}
        for entry in folder.iterdir():
            if entry.name.startswith("."):
                continue
            index = shard_index(entry.name)
            if index is None:
                raise DataError(f"episode dataset {str(self.path)!r} holds {str(entry)!r}, which is not an episode "
                                f"shard (those are named {shard_name(0)}, {shard_name(1)}, ... by episode number, "
                                f"below {MAX_EPISODES}); move it out of {str(folder)!r}")
            held[index] = entry
        return dict(sorted(held.items()))

    @property
    def shards(self) -> list[Path]:
        """Complete shards in episode order (see :meth:`episodes`)."""
        return list(self.episodes().values())

    def __len__(self) -> int:
        return len(self.episodes())

    def gap_problem(self) -> str | None:
        """What the dataset lacks below its last episode and how to record it, in words
        (``lacks episode 1 of episodes 0 to 2; ...``), or None when it lacks nothing."""
        held = self.episodes()
        missing = [k for k in range(max(held, default=-1) + 1) if k not in held]
        if not missing:
            return None
        end = max(held) + 1
        return (f"lacks {describe_numbers(missing)} of episodes 0 to {end - 1}; run the `esper collect` that "
                f"recorded it again (--out {str(self.path)!r}, the settings it was recorded with and --episodes "
                f"{end} or more): it records only the missing episodes")

    def check(self, *, blueprint_keys: Sequence[str], slot_names: Sequence[str]) -> None:
        """Refuse a dataset recorded with another action space or observation schema."""
        check_compatible(self.metadata, path=self.path, blueprint_keys=blueprint_keys, slot_names=slot_names,
                         observation_version=OBSERVATION_SCHEMA_VERSION, what="episode dataset",
                         verb="was recorded")

    def warn_if_masked_differently(self, run_config: Mapping[str, Any]) -> None:
        """Warn when the dataset was recorded under another ``[kasmina] mask_by_gates`` than the
        run's. It still trains (its masks are what the behaviour policy saw), but what a policy
        learns from them about when to fossilize differs: measured on ``shapes``, IQL trained on a
        recording by stage returned exactly the same acting under the gated mask, and 0.10 less
        than from a recording under it (docs/learned_controllers.md). Recordings made before the
        setting existed were by stage."""
        recorded_config = self.metadata.get("run_config")
        kasmina = recorded_config.get("kasmina") if isinstance(recorded_config, Mapping) else None
        recorded = kasmina.get("mask_by_gates", False) if isinstance(kasmina, Mapping) else False
        run = run_config.get("kasmina", {}).get("mask_by_gates", True)
        if recorded != run:
            logger.warning("dataset_mask_differs", dataset=str(self.path), recorded_mask_by_gates=recorded,
                           run_mask_by_gates=run,
                           hint="record the episodes again under this run's [kasmina] mask_by_gates")

    def write_episode(self, index: int, episode: Mapping[str, Any]) -> Path:
        """Write one episode's shard atomically."""
        target = self.path / EPISODES_DIR / shard_name(index)
        with atomic_file(target) as handle:
            torch.save(dict(episode), handle)
        return target

    def read_episode(self, shard: Path) -> dict[str, Any]:
        """One shard; a corrupt or incomplete one is a DataError naming it."""
        try:
            data = load_torch_file(shard)
        except UnreadableTorchFile as exc:
            raise DataError(f"episode shard {str(shard)!r} is corrupt ({exc}); delete it and {RERECORD}") from None
        missing = [k for k in _TENSORS if not isinstance(data, dict) or not isinstance(data.get(k), torch.Tensor)]
        if missing:
            raise DataError(f"episode shard {str(shard)!r} is incomplete: missing {', '.join(missing)}")
        size = self.metadata["observation_size"]
        if data["obs"].dim() != 2 or data["obs"].shape[1] != size:
            raise DataError(f"episode shard {str(shard)!r} has observations of shape {tuple(data['obs'].shape)}; "
                            f"the dataset's observation size is {size}")
        problem = _shard_problem(data, n_slots=len(self.metadata["slot_names"]),
                                 n_blueprints=len(self.metadata["blueprint_catalog"]))
        if problem:
            raise DataError(f"episode shard {str(shard)!r} is damaged: {problem}; delete it and {RERECORD}")
        return data

    def transitions(self) -> int:
        return sum(self.read_episode(s)["obs"].shape[0] for s in self.shards)

    def minibatches(self, batch_size: int, *, generator: torch.Generator, shards_per_chunk: int = 32
                    ) -> Iterator[Batch]:
        """One pass over the data in shuffled minibatches, holding ``shards_per_chunk`` episodes
        in memory at a time (shards are shuffled, then transitions within each chunk)."""
        shards = self.shards
        if not shards:
            raise DataError(f"episode dataset {str(self.path)!r} has no complete episodes")
        order = torch.randperm(len(shards), generator=generator).tolist()
        for start in range(0, len(order), shards_per_chunk):
            episodes = [self.read_episode(shards[i]) for i in order[start:start + shards_per_chunk]]
            chunk = {k: torch.cat([e[k] for e in episodes]) for k in _TENSORS}
            perm = torch.randperm(chunk["obs"].shape[0], generator=generator)
            for idx in perm.split(batch_size):
                yield Batch(obs=chunk["obs"][idx], next_obs=chunk["next_obs"][idx],
                            masks=MaskBatch(chunk["mask_ops"][idx], chunk["mask_slots"][idx],
                                            chunk["mask_blueprints"][idx]),
                            actions=chunk["actions"][idx], rewards=chunk["rewards"][idx],
                            terminated=chunk["terminated"][idx])


def _check_metadata(metadata: Mapping[str, Any], *, where: str) -> None:
    """Refuse metadata whose fields are missing, mistyped or out of range (a hand-edited or crafted
    dataset.json), naming the field: a dataset is refused when opened, not trained on."""
    try:
        check_header(metadata, _METADATA_FIELDS, where=where)
    except ConfigError as exc:
        raise DataError(str(exc)) from None
    for key, (low, high) in _METADATA_RANGES.items():
        if not low <= metadata[key] <= high:
            upper = "2**63 - 1" if high == INT_MAX else high
            raise DataError(f"{where} is damaged: header field {key!r} is {metadata[key]}, "
                            f"not an integer from {low} to {upper}")
    for key, kind in _METADATA_FIELDS.items():
        if kind is str and not metadata[key].strip():
            raise DataError(f"{where} is damaged: header field {key!r} is empty")


def _shard_problem(data: Mapping[str, torch.Tensor], *, n_slots: int, n_blueprints: int) -> str | None:
    """What makes a shard unusable for training (shapes, dtypes, action indices out of range,
    non-finite observations or rewards), or None: checked here, not found as an indexing
    error deep inside an update."""
    steps = data["obs"].shape[0]
    shapes = {"next_obs": tuple(data["obs"].shape), "mask_ops": (steps, N_OPS),
              "mask_slots": (steps, N_OPS, n_slots), "mask_blueprints": (steps, n_blueprints),
              "actions": (steps, 3), "rewards": (steps,), "terminated": (steps,), "truncated": (steps,)}
    for key, shape in shapes.items():
        if tuple(data[key].shape) != shape:
            return f"{key} has shape {tuple(data[key].shape)}, expected {shape}"
    for key in ("mask_ops", "mask_slots", "mask_blueprints", "terminated", "truncated"):
        if data[key].dtype is not torch.bool:
            return f"{key} is {data[key].dtype}, not bool"
    for key in ("obs", "next_obs", "rewards"):
        if not data[key].is_floating_point() or not bool(torch.isfinite(data[key]).all()):
            return f"{key} is not all finite floating-point numbers"
    actions = data["actions"]
    if actions.dtype is not torch.int64:
        return f"actions is {actions.dtype}, not int64"
    for column, (name, bound) in enumerate((("op", N_OPS), ("slot", n_slots), ("blueprint", n_blueprints))):
        values = actions[:, column]
        if steps and (int(values.min()) < 0 or int(values.max()) >= max(bound, 1)):
            return f"an action's {name} index is outside 0..{bound - 1}"
    masks = MaskBatch(data["mask_ops"], data["mask_slots"], data["mask_blueprints"])
    if steps and not bool(_allowed(actions, masks).all()):
        return "it records an action its mask forbids, so it is not a recording of a policy acting within the mask"
    return None


def _allowed(actions: torch.Tensor, masks: MaskBatch) -> torch.Tensor:
    rows = torch.arange(actions.shape[0])
    op, slot, bp = actions[:, 0], actions[:, 1], actions[:, 2]
    slot_ok = torch.where(op == Op.WAIT, True, masks.slots[rows, op, slot])
    bp_ok = torch.where(op == Op.GERMINATE, masks.blueprints[rows, bp], True)
    return masks.ops[rows, op] & slot_ok & bp_ok


def check_distinct_datasets(paths: Sequence[str], *, option: str) -> None:
    """Refuse one dataset directory named twice, however it is spelled (``d1``, ``./d1``, its
    absolute path, a symbolic link to it): its episodes would count twice. (The option parser
    already refuses the same spelling twice.)"""
    seen: dict[Path, str] = {}
    for path in paths:
        where = Path(path).resolve()
        if where in seen:
            raise ConfigError(f"{option} names the dataset directory {seen[where]!r} twice (also as {path!r}); "
                              "its episodes would count twice")
        seen[where] = path


def require_dataset(path: Path | str | None) -> EpisodeDataset:
    if path is None:
        raise ConfigError("offline training needs a dataset: --dataset DIR (record one with `esper collect`)")
    return EpisodeDataset(path)


def open_datasets(paths: Sequence[str], *, option: str, blueprint_keys: Sequence[str], slot_names: Sequence[str],
                  task: str, obs_size: int, run_config: Mapping[str, Any]) -> list[EpisodeDataset]:
    """The datasets ``option`` names (``--dataset`` for IQL, ``--bc-dataset`` for PPO's behaviour
    cloning), each checked against the run before anything is trained or written: one directory
    named twice, a folder that is no dataset, another action space or observation schema, another
    task, another observation size, a dataset without complete episodes, one with a file in
    ``episodes/`` that is no shard and one that lacks an episode below its last (a gap ``esper
    collect`` fills; the message names the missing numbers) are refused, naming the option and the
    path. ``run_config`` is the run's configuration as tables (``ResolvedRunView.to_toml_dict()``);
    a dataset recorded under another ``[kasmina] mask_by_gates`` is named in a warning."""
    check_distinct_datasets(paths, option=option)
    opened: list[EpisodeDataset] = []
    for path in paths:
        where = f"{option} {str(path)!r}"
        try:
            dataset = EpisodeDataset(path)
            dataset.check(blueprint_keys=blueprint_keys, slot_names=slot_names)
            gap = dataset.gap_problem()  # reads episodes/, refusing a file that is no shard
        except (ConfigError, DataError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
        meta = dataset.metadata
        if meta["task"] != task:
            raise ConfigError(f"{where} was recorded on task {meta['task']!r}; this run trains on {task!r} "
                              "(learning from decisions made on another task's training curves)")
        if meta["observation_size"] != obs_size:
            raise ConfigError(f"{where} holds observations of size {meta['observation_size']}; the policy's "
                              f"network here takes {obs_size} (another observation layout)")
        if not len(dataset):
            raise ConfigError(f"{where} has no complete episodes yet")
        if gap is not None:
            raise ConfigError(f"{where} {gap}")
        dataset.warn_if_masked_differently(run_config)
        opened.append(dataset)
    return opened
