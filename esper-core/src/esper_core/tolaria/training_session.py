"""What ``esper run`` hands a learned policy's trainer: the run directory, telemetry, and
environments to train on (see ``PolicySpec.trainer``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from esper_core.contracts.events import TelemetryEvent
from esper_core.errors import ConfigError
from esper_core.setup.resolve import ResolvedRun
from esper_core.setup.training_options import resume_extension
from esper_core.storage.run_checkpoint import resume_difference
from esper_core.tolaria.environments import InProcessEnvironments, WorkerEnvironments, make_environments


@frozen(kw_only=True)
class TrainingSession:
    """One training job inside a run directory."""

    resolved: ResolvedRun
    run_dir: Path
    device: str
    emit: Callable[[TelemetryEvent], None]
    #: continue from the latest checkpoint in ``run_dir`` (``esper run --resume RUN_DIR``)
    resume: bool = False
    #: ``stop[0]`` becomes a signal's number when SIGINT or SIGTERM asks the run to stop
    stop: list[int] = attrs.Factory(lambda: [0])

    @property
    def stop_requested(self) -> bool:
        return bool(self.stop[0])

    @property
    def stop_signal(self) -> int:
        """The number of the signal that asked the run to stop (0: none)."""
        return self.stop[0]

    def checkpointed(self, where: str) -> None:
        """Call after each checkpoint the run can resume from (``where`` names it, e.g. "round 3
        of 10"): when a signal asked the run to stop, raises RunInterrupted with the resume command
        (exit code 130 for SIGINT, 143 for SIGTERM)."""
        if self.stop[0]:
            from esper_core.tolaria.job import RunInterrupted  # job imports this module

            raise RunInterrupted(f"interrupted after {where}; the checkpoint is written: continue with "
                                 f"`esper run --resume {self.run_dir}`", signum=self.stop[0])

    def refuse_other_run(self, recorded: Mapping[str, Any], *, source: str) -> None:
        """Call on ``--resume`` with the run configuration the trainer's checkpoint recorded
        (``source`` names the file): raises ConfigError when it was written under another
        configuration than this run's (another seed, task or option; the trainer's
        ``extends_on_resume`` option and where the run directory is may differ), so a checkpoint
        copied in from another run is never continued as this one."""
        difference = resume_difference(recorded, self.resolved, resume_extension(self.resolved.policy),
                                       saved_in="the checkpoint")
        if difference is not None:
            raise ConfigError(f"--resume: {source} was written under another configuration than this run's "
                              f"({difference}); a run resumes only from its own checkpoints")

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def environments(self, *, n_envs: int, workers: bool, policy_name: str,
                     length: int | None = None) -> InProcessEnvironments | WorkerEnvironments:
        """``n_envs`` environments on the run's task, each with its own task seed."""
        return make_environments(self.resolved, n_envs=n_envs, workers=workers, device=self.device,
                                 emit=self.emit, policy_name=policy_name, length=length)
