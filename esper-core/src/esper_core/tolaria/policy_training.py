"""What ``esper run`` hands a learned policy's trainer: the run directory, telemetry, and
environments to train on (see ``PolicySpec.trainer``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from attrs import frozen

from esper_core.contracts.events import TelemetryEvent
from esper_core.tolaria.resolve import ResolvedRun
from esper_core.tolaria.vector import InProcessEnvironments, WorkerEnvironments, make_environments

#: ``[policy]`` options that only a learned policy's trainer understands (set by the CLI flags
#: ``--rounds``, ``--envs``, ``--episode-length``, ``--workers`` and ``--dataset``).
TRAINING_OPTIONS = ("rounds", "envs", "episode_length", "workers", "dataset")


@frozen(kw_only=True)
class TrainingSession:
    """One training job inside a run directory."""

    resolved: ResolvedRun
    run_dir: Path
    device: str
    emit: Callable[[TelemetryEvent], None]
    #: continue from the latest checkpoint in ``run_dir`` (``esper run --resume RUN_DIR``)
    resume: bool = False

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def environments(self, *, n_envs: int, workers: bool, policy_name: str,
                     length: int | None = None) -> InProcessEnvironments | WorkerEnvironments:
        """``n_envs`` environments on the run's task, each with its own task seed."""
        return make_environments(self.resolved, n_envs=n_envs, workers=workers, device=self.device,
                                 emit=self.emit, policy_name=policy_name, length=length)
