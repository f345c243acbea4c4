"""The task, host model and slot names an episode runs on, built from a resolved run."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import cast

import torch

from esper_core.contracts.events import TelemetryEvent
from esper_core.contracts.protocols import SegmentedHost, Task
from esper_core.kasmina import GateSuite, MorphogeneticModel
from esper_core.plugins.blame import blame, module_of
from esper_core.setup.resolve import ResolvedRun
from esper_core.setup.seeding import choose_threads, resolve_device, seed_everything


def episode_seed(base: int, *, env: int, episode: int, held_out: bool = False) -> int:
    """A 31-bit seed for episode ``episode`` of environment ``env`` under run seed ``base``.

    Hashing (not ``base + k``) keeps neighbouring runs from sharing episodes; the low bit
    separates training (0) from held-out evaluation (1) seeds.
    """
    digest = hashlib.sha256(f"esper-episode:{base}:{env}:{episode}".encode()).digest()
    value = int.from_bytes(digest[:4], "little") & 0x7FFF_FFFE
    return value | 1 if held_out else value


def build_task(resolved: ResolvedRun, *, seed: int, device: str) -> Task:
    """The run's task, built with ``seed`` (host init, shuffling, augmentation) on ``device``."""
    spec = resolved.task
    with blame("task", spec.name, module_of(spec.factory), "its factory"):
        return spec.factory(seed=seed, device=device, options=resolved.task_options)


def prepare_task(resolved: ResolvedRun) -> tuple[str, Task, tuple[str, ...]]:
    """Seed, pick the device, build the run's task and learn its slot names; set CPU threads."""
    config = resolved.config
    device = resolve_device(config.device)
    seed_everything(config.seed, deterministic=config.deterministic)
    task = build_task(resolved, seed=config.seed, device=device)
    probe_host = task.build_host()
    points = cast(SegmentedHost, probe_host).injection_points  # build_host's contract
    slot_names = resolved.slots if resolved.slots is not None else tuple(p.name for p in points)
    threads = choose_threads(config.threads, device, sum(p.numel() for p in probe_host.parameters()))
    if threads is not None:
        torch.set_num_threads(threads)
    return device, task, slot_names


def build_model(resolved: ResolvedRun, task: Task, emit: Callable[[TelemetryEvent], None]) -> MorphogeneticModel:
    """Wrap a fresh host from ``task`` with the run's slots, gates and lifecycle."""
    return MorphogeneticModel(
        task.build_host(),
        slots=resolved.slots,
        topology=resolved.task.topology,
        lifecycle=resolved.lifecycle,
        thresholds=resolved.thresholds,
        gates=GateSuite.from_specs(resolved.gate_specs, resolved.task.topology),
        alpha_schedules=resolved.alpha_schedules,
        param_budget=resolved.config.param_budget,
        emit=emit,
    )
