"""What a learned policy's trainer is handed: the resolved run, the training session and the
environments it steps (``PolicySpec.trainer``, ``PolicyTrainer.train``).

These are read-only :class:`typing.Protocol` views of engine objects
(``esper_core.setup.resolve.ResolvedRun``, ``esper_core.tolaria.training_session.TrainingSession``,
the in-process and worker environments), so a trainer is typed against what it may use and the
engine stays free to change the rest. Torch-free: engine types appear only for type checkers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from esper_core.contracts.decisions import ActionMask, Decision
    from esper_core.contracts.events import TelemetryEvent
    from esper_core.contracts.reports import EpochReport
    from esper_core.contracts.specs import BlueprintSpec, PolicySpec, TaskSpec


class RunConfigView(Protocol):
    """The user's run settings a trainer or a recorder reads (``ResolvedRun.config``)."""

    @property
    def seed(self) -> int: ...

    @property
    def policy_options(self) -> Mapping[str, Any]: ...


class ResolvedRunView(Protocol):
    """A fully resolved run, as a trainer sees it (``PolicyTrainingContext.resolved``,
    ``TrainingSession.resolved``): the components chosen and the settings after defaults."""

    @property
    def config(self) -> RunConfigView: ...

    @property
    def task(self) -> TaskSpec: ...

    @property
    def policy(self) -> PolicySpec: ...

    @property
    def epochs(self) -> int: ...

    @property
    def blueprints(self) -> tuple[BlueprintSpec, ...]: ...

    @property
    def blueprint_keys(self) -> tuple[str, ...]: ...

    def to_toml_dict(self) -> dict[str, dict[str, Any]]:
        """The fully resolved configuration, in the tables of a config file (stored in
        checkpoints so a trained policy records what it was trained on)."""


class EpisodeStepView(Protocol):
    """What an environment hands its controller after each epoch (``EpisodeStep``)."""

    @property
    def report(self) -> EpochReport: ...

    @property
    def mask(self) -> ActionMask: ...

    @property
    def reward(self) -> float: ...

    @property
    def reward_terms(self) -> Mapping[str, float]: ...

    @property
    def done(self) -> bool: ...

    @property
    def truncated(self) -> bool:
        """The episode stopped at its length cap (a time limit, not a terminal state)."""


@runtime_checkable
class Environments(Protocol):
    """N episodes stepped in lock-step (``TrainingSession.environments``)."""

    def start(self, episodes: Sequence[int], seeds: Sequence[int]) -> Sequence[EpisodeStepView]:
        """Begin a fresh episode in every environment (one episode number and task seed each);
        returns each first step."""

    def step(self, decisions: Sequence[Decision]) -> Sequence[EpisodeStepView]:
        """Apply one decision per environment; returns each next step."""

    def results(self) -> list[dict[str, Any] | None]:
        """Each environment's finished-episode summary (None while its episode runs)."""

    def close(self) -> None:
        """Stop every environment (and its worker process)."""


@runtime_checkable
class TrainingSessionProtocol(Protocol):
    """One training job inside ``esper run`` (``PolicyTrainer.train(session=...)``)."""

    @property
    def resolved(self) -> ResolvedRunView: ...

    @property
    def run_dir(self) -> Path: ...

    @property
    def device(self) -> str: ...

    @property
    def emit(self) -> Callable[[TelemetryEvent], None]:
        """Send a telemetry event to the run's sinks."""

    @property
    def resume(self) -> bool:
        """``esper run --resume``: continue from the latest checkpoint in ``run_dir``."""

    @property
    def stop_requested(self) -> bool:
        """SIGINT or SIGTERM asked the run to stop."""

    @property
    def stop_signal(self) -> int:
        """The number of the signal that asked the run to stop (0: none)."""

    @property
    def checkpoint_dir(self) -> Path: ...

    def checkpointed(self, where: str) -> None:
        """Call after each checkpoint the run can resume from; raises ``RunInterrupted`` (see
        ``esper_core.sdk``) there when a signal asked the run to stop."""

    def refuse_other_run(self, recorded: Mapping[str, Any], *, source: str) -> None:
        """Call on ``--resume`` with the run configuration the trainer's checkpoint recorded
        (``source`` names the file); raises ``ConfigError`` when another run's configuration
        wrote it (another seed, task or option), so a copied-in checkpoint is never continued."""

    def environments(self, *, n_envs: int, workers: bool, policy_name: str,
                     length: int | None = None) -> Environments:
        """``n_envs`` environments on the run's task (in worker processes when ``workers``)."""
