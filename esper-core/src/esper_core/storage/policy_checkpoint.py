"""Learned-policy checkpoints: one file format every learned policy shares.

A checkpoint is a ``torch.save`` dictionary with a header the engine reads without knowing the
policy — which policy wrote it, the run configuration it was trained under, the blueprint
catalog (the action space) and the observation schema — plus the policy's own ``payload``.
Loading checks the header against the run it is used in and refuses, naming the difference,
rather than silently mapping action indices onto other blueprints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from esper_core.errors import ConfigError
from esper_core.files import UnreadableTorchFile, atomic_file, check_input_file, load_torch_file
from esper_core.wording import count

FORMAT = "esper-policy-checkpoint"
FORMAT_VERSION = 1


def save_policy_checkpoint(path: Path, *, policy: str, run_config: Mapping[str, Any],
                           blueprint_keys: Sequence[str], slot_names: Sequence[str],
                           observation_version: int, payload: Mapping[str, Any]) -> None:
    """Write atomically (a kill mid-write leaves the previous checkpoint intact)."""
    data = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "policy": policy,
        "run_config": dict(run_config),
        "blueprint_catalog": list(blueprint_keys),
        "slot_names": list(slot_names),
        "observation_version": observation_version,
        "payload": dict(payload),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as handle:
        torch.save(data, handle)


def load_policy_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a checkpoint; anything that is not one is a ConfigError naming the file."""
    path = Path(path)
    check_input_file(path, label="policy checkpoint")  # a named pipe or a device is never opened
    try:
        data = load_torch_file(path)
    except UnreadableTorchFile as exc:
        raise ConfigError(f"policy checkpoint {str(path)!r} cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"{str(path)!r} is not an Esper policy checkpoint")
    if data.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"policy checkpoint {str(path)!r} has format version "
                          f"{data.get('format_version')!r}; this Esper reads version {FORMAT_VERSION}")
    check_header(data, HEADER, where=f"policy checkpoint {str(path)!r}")
    return data


#: Header fields and their types, checked before any is used.
HEADER: dict[str, type] = {"policy": str, "run_config": dict, "blueprint_catalog": list, "slot_names": list,
                           "observation_version": int, "payload": dict}


def check_header(data: Mapping[str, Any], fields: Mapping[str, type], *, where: str) -> None:
    """Refuse a file whose header misses a field or holds one of the wrong type (a damaged or
    crafted file), naming the field."""
    for key, kind in fields.items():
        value = data.get(key)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise ConfigError(f"{where} is damaged: header field {key!r} is "
                              f"{'missing' if value is None else type(value).__name__}, not {kind.__name__}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} is damaged: header field {key!r} is not a list of names")


def check_compatible(data: Mapping[str, Any], *, path: Path | str, blueprint_keys: Sequence[str],
                     slot_names: Sequence[str], observation_version: int, what: str = "policy checkpoint",
                     verb: str = "was trained") -> None:
    """Refuse a checkpoint (or an episode dataset: ``what``, ``verb``) made with another action
    space or observation schema."""
    where = f"{what} {str(path)!r}"
    if data["observation_version"] != observation_version:
        raise ConfigError(f"{where} {verb} on observation schema v{data['observation_version']}; "
                          f"this Esper builds v{observation_version}")
    trained, now = list(data["blueprint_catalog"]), list(blueprint_keys)
    if trained != now:
        missing = [k for k in trained if k not in now]
        extra = [k for k in now if k not in trained]
        detail = "; ".join(part for part in (
            f"missing here: {', '.join(missing)}" if missing else "",
            f"not in the checkpoint: {', '.join(extra)}" if extra else "",
        ) if part) or "same blueprints in another order"
        raise ConfigError(f"{where} {verb} on another blueprint catalog ({detail}); run with "
                          f"--blueprints {','.join(trained)} and the plugins that provide them")
    if len(data["slot_names"]) != len(slot_names):
        raise ConfigError(f"{where} {verb} with {count(len(data['slot_names']), 'slot')} "
                          f"({', '.join(data['slot_names'])}); this run has {len(slot_names)} "
                          f"({', '.join(slot_names)})")
