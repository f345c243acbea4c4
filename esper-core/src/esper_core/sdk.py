"""Esper's plugin SDK: with :mod:`esper_core.contracts` and :mod:`esper_core.testing`, everything
a plugin may import from ``esper_core``.

A plugin imports from the modules in :data:`PUBLIC_MODULES` only; everything else in
``esper_core`` is the engine's own and may change in any release (``tests/test_public_surface.py``
holds every distribution in this repository to that). The names below are listed with a
one-line description in ``docs/writing-plugins.md`` ("What a plugin may import").

Importing this module is cheap and never imports torch: apart from the marker, the errors and
``lazy``, each name is imported on first use (PEP 562), so ``from esper_core.sdk import adam``
costs torch only where a plugin's torch-backed module asks for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from esper_core.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    EsperError,
    PluginError,
    UnknownNameError,
)
from esper_core.lazy import LazyCallable, lazy
from esper_core.markers import hookimpl

#: The modules a plugin may import (a package counts with its submodules where it ends in
#: ``.*``). ``markers``, ``errors`` and ``lazy`` stay public for plugins written before the SDK;
#: ``options`` is the options toolkit every distribution declares its options with.
PUBLIC_MODULES: tuple[str, ...] = (
    "esper_core",
    "esper_core.sdk",
    "esper_core.contracts.*",
    "esper_core.testing.*",
    "esper_core.markers",
    "esper_core.errors",
    "esper_core.lazy",
    "esper_core.options",
)

#: name → (``module:attribute``, what it is). Resolved on first access.
_LAZY: dict[str, tuple[str, str]] = {
    # -- declaring components
    "BlueprintEntry": ("esper_core.blueprint_catalog:BlueprintEntry",
                       "one blueprint of a catalog, for declare_blueprints"),
    "declare_blueprints": ("esper_core.blueprint_catalog:declare_blueprints",
                           "BlueprintSpecs from a topology's BlueprintEntry list"),
    "check_width": ("esper_core.blueprint_catalog:check_width",
                    "refuse a slot width a blueprint cannot use, with a ConfigError"),
    "options": ("esper_core.options", "the options toolkit (parse_options, validators, converters)"),
    "int_at_least": ("esper_core.options:int_at_least", "attrs validator: an integer ≥ n"),
    "positive_number": ("esper_core.options:positive_number", "attrs validator: a number > 0"),
    "non_negative_number": ("esper_core.options:non_negative_number", "attrs validator: a number ≥ 0"),
    "one_of": ("esper_core.options:one_of", "attrs validator: one of the given strings"),
    # -- training a learned policy (PolicySpec.trainer)
    "TrainingSession": ("esper_core.tolaria.training_session:TrainingSession",
                        "the engine's TrainingSessionProtocol: what PolicyTrainer.train receives"),
    "InProcessEnvironments": ("esper_core.tolaria.environments:InProcessEnvironments",
                              "N episodes stepped one after another in this process"),
    "WorkerEnvironments": ("esper_core.tolaria.environments:WorkerEnvironments",
                           "N episodes, each in its own worker process (CPU)"),
    "RunInterrupted": ("esper_core.tolaria.interrupts:RunInterrupted",
                       "raise to stop a run on SIGINT/SIGTERM (exit code 128 + signal)"),
    "HostEpisode": ("esper_core.tolaria.episode:HostEpisode",
                    "one episode as a stepwise environment (start, step, result, close)"),
    "EpisodeStep": ("esper_core.tolaria.episode:EpisodeStep",
                    "what an episode hands its controller after each epoch"),
    "episode_seed": ("esper_core.setup.tasks:episode_seed",
                     "the task seed of (run seed, environment, episode); held-out seeds are odd"),
    "generator_seed": ("esper_core.setup.seeding:generator_seed",
                       "a torch generator seed for (run seed, epoch or episode), in torch's range for any run seed"),
    "build_task": ("esper_core.setup.tasks:build_task", "the run's task, built for one seed"),
    "prepare_task": ("esper_core.setup.tasks:prepare_task",
                     "device, first task and slot names of a resolved run"),
    "make_policy": ("esper_core.setup.policies:make_policy", "a policy of the catalog, for a resolved run"),
    "ResolvedRun": ("esper_core.setup.resolve:ResolvedRun",
                    "a fully resolved run (the engine's ResolvedRunView)"),
    "resolve_run": ("esper_core.setup.resolve:resolve_run", "RunConfig + Catalog → ResolvedRun"),
    "RunConfig": ("esper_core.config:RunConfig", "a run's configuration, from a TOML file and flags"),
    "parse_key_values": ("esper_core.config:parse_key_values", "KEY=VALUE flags → a dict of typed values"),
    "Catalog": ("esper_core.plugins.registry:Catalog", "every registered component, by kind"),
    "PluginSettings": ("esper_core.plugins.manager:PluginSettings",
                       "which plugins load (autoload, allow-list, strict, tracing)"),
    "load_plugins": ("esper_core.plugins.manager:load_plugins",
                     "load plugins (extra=[(name, module)] registers one in-process, for tests)"),
    "build_catalog": ("esper_core.plugins.registry:build_catalog", "the component catalog of loaded plugins"),
    "adam": ("esper_core.kasmina.optimizers:adam", "Adam (fused where the device allows), as Esper trains"),
    "sgd": ("esper_core.kasmina.optimizers:sgd", "SGD (fused where the device allows)"),
    # -- files and checkpoints
    "save_policy_checkpoint": ("esper_core.storage.policy_checkpoint:save_policy_checkpoint",
                               "write a trained policy in Esper's checkpoint format (atomically)"),
    "load_policy_checkpoint": ("esper_core.storage.policy_checkpoint:load_policy_checkpoint",
                               "read a policy checkpoint through the safe loader"),
    "check_header": ("esper_core.storage.policy_checkpoint:check_header",
                     "refuse a checkpoint header whose fields are missing or mistyped"),
    "check_compatible": ("esper_core.storage.policy_checkpoint:check_compatible",
                         "refuse a policy checkpoint trained on another action space"),
    "write_json": ("esper_core.files:write_json", "write JSON atomically"),
    "write_atomic": ("esper_core.files:write_atomic", "write text atomically"),
    "atomic_file": ("esper_core.files:atomic_file", "a binary file that appears whole or not at all"),
    "load_torch_file": ("esper_core.files:load_torch_file",
                        "torch.load(weights_only=True) on the CPU; a bad file raises UnreadableTorchFile"),
    "UnreadableTorchFile": ("esper_core.files:UnreadableTorchFile",
                            "raised by load_torch_file; its message says why, in words"),
    "check_writable_dir": ("esper_core.files:check_writable_dir",
                           "refuse an output folder that cannot be written, naming the flag"),
    "check_output": ("esper_core.storage.outputs:check_output",
                     "refuse a command's --out that exists (unless --force) or lies in another run"),
    "check_outside_runs": ("esper_core.storage.outputs:check_outside_runs",
                           "refuse an output inside a run or dataset directory the command does not read"),
    "check_sink_path": ("esper_core.storage.outputs:check_sink_path",
                        "refuse a sink file in another run, or one that exists unless the run resumes"),
    "effective_config": ("esper_core.setup.effective_config:effective_config",
                         "a run's config tables with each component's options read (defaults filled in)"),
    "first_difference": ("esper_core.storage.run_checkpoint:first_difference",
                         "the first key two recorded configurations differ in, in words (None: equal)"),
    "check_input_file": ("esper_core.files:check_input_file",
                         "refuse, before opening it, an input that is missing, no regular file or too large"),
    "read_input_file": ("esper_core.files:read_input_file",
                        "the bytes of a small input file, checked as check_input_file and capped in size"),
    "require_memory": ("esper_core.memory:require_memory",
                       "refuse, before allocating, what needs more memory than this machine has available"),
    "TRAINED_BYTES_PER_PARAMETER": ("esper_core.memory:TRAINED_BYTES_PER_PARAMETER",
                                    "bytes a float32 parameter trained with Adam holds (weight, gradient, moments)"),
    "available_memory": ("esper_core.memory:available_memory",
                         "bytes this process could still allocate (None where the platform does not say)"),
    "RunDirLock": ("esper_core.storage.rundir:RunDirLock", "one writer per run or dataset folder"),
    "RunDirBusy": ("esper_core.storage.rundir:RunDirBusy", "raised when another process holds the lock"),
    "DATASET_FILE": ("esper_core.storage.rundir:DATASET_FILE",
                     "an episode dataset's metadata file, by which Esper knows a dataset folder"),
    "EPISODES_DIR": ("esper_core.storage.rundir:EPISODES_DIR", "an episode dataset's folder of episode shards"),
    # -- commands, logging and reports
    "AppState": ("esper_core.cli.app:AppState", "the CLI's state (plugins, catalog) for esper_add_commands"),
    "format_table": ("esper_core.presentation.table:format_table", "a plain-text table, as the CLI prints"),
    "Progress": ("esper_core.presentation.progress:Progress",
                 "counts and ETA of long work: one line per unit on a terminal, nothing otherwise"),
    "deferred_logger": ("esper_core.log_config:deferred_logger",
                        "a structlog logger bound on first use (cheap at import)"),
    "TelemetryHub": ("esper_core.telemetry.hub:TelemetryHub", "fans telemetry events out to sinks"),
    # -- blueprint discovery (GeneratorSpec)
    "Evaluation": ("esper_core.discovery.crucible:Evaluation", "the Crucible's verdict on one candidate"),
    "VOCABULARY": ("esper_core.discovery.tokens:VOCABULARY", "the blueprint grammar's tokens"),
    "MAX_TOKENS": ("esper_core.discovery.grammar:MAX_TOKENS", "the longest candidate the grammar allows"),
    "CrucibleTask": ("esper_core.discovery.curriculum:CrucibleTask",
                     "one Crucible task a topology declares (TopologySpec.crucible_tasks)"),
    "TrainData": ("esper_core.discovery.batched:TrainData", "a Crucible task's train, eval and probe tensors"),
    "ToSpatial": ("esper_core.discovery.batched:ToSpatial",
                  "(N, C) to (N, C, 1, …, 1): a vector stem feeding a slot with spatial axes"),
    # -- extension-point protocols (also in esper_core.contracts.*)
    "TrainingSessionProtocol": ("esper_core.contracts.training:TrainingSessionProtocol",
                                "what PolicyTrainer.train(session=...) may use"),
    "Environments": ("esper_core.contracts.training:Environments", "episodes stepped in lock-step"),
    "EpisodeStepView": ("esper_core.contracts.training:EpisodeStepView", "one step of an environment"),
    "ResolvedRunView": ("esper_core.contracts.training:ResolvedRunView",
                        "the resolved run as a trainer reads it"),
    "RunConfigView": ("esper_core.contracts.training:RunConfigView", "the run settings a trainer reads"),
    "SeedView": ("esper_core.contracts.seeds:SeedView", "a read-only record of one seed slot"),
    "ObservedModel": ("esper_core.contracts.seeds:ObservedModel",
                      "the model an observer watches (nn.Module + seed_views())"),
    "RewindableSink": ("esper_core.contracts.protocols:RewindableSink",
                       "a sink a resumed run can rewind (position, rewind)"),
    "BlueprintFactory": ("esper_core.contracts.factories:BlueprintFactory", "BlueprintSpec.factory(width=)"),
    "TaskFactory": ("esper_core.contracts.factories:TaskFactory", "TaskSpec.factory(seed=, device=, options=)"),
    "PolicyFactory": ("esper_core.contracts.factories:PolicyFactory", "PolicySpec.factory(context=)"),
    "PolicyTrainerFactory": ("esper_core.contracts.factories:PolicyTrainerFactory",
                             "PolicySpec.trainer(context=)"),
    "SinkFactory": ("esper_core.contracts.factories:SinkFactory", "SinkSpec.factory(run_dir=, options=)"),
    "ObserverFactory": ("esper_core.contracts.factories:ObserverFactory",
                        "ObserverSpec.factory(model=, options=)"),
    "AlphaScheduleFactory": ("esper_core.contracts.factories:AlphaScheduleFactory",
                             "AlphaScheduleSpec.factory(total_epochs=, **options)"),
    "GeneratorFactory": ("esper_core.contracts.factories:GeneratorFactory",
                         "GeneratorSpec.factory(seed=, options=)"),
    "BlueprintGenerator": ("esper_core.contracts.factories:BlueprintGenerator",
                           "what a generator returns: propose(n), observe(candidates, evaluations)"),
    "EvaluationView": ("esper_core.contracts.factories:EvaluationView", "an Evaluation as a generator reads it"),
}

#: The names imported with the module, and what each is.
_EAGER: dict[str, str] = {
    "hookimpl": "the marker a plugin decorates its hook implementations with",
    "lazy": "lazy('pkg.module:attr'): a factory that imports its module on first call",
    "LazyCallable": "what lazy() returns",
    "EsperError": "the base of Esper's errors: a one-line message, no traceback",
    "ConfigError": "bad settings or options",
    "DataError": "missing or damaged data",
    "PluginError": "a plugin failed (names the component)",
    "UnknownNameError": "a component name that is not registered",
    "CheckpointError": "a checkpoint that cannot be read or does not fit",
}

#: Every public name with its one-line description.
DESCRIPTIONS: dict[str, str] = {**_EAGER, **{name: doc for name, (_, doc) in _LAZY.items()}}

#: Every name above, written out for tools that read ``__all__`` without running the module (a test
#: checks it matches ``DESCRIPTIONS``).
__all__ = [
    "DATASET_FILE",
    "DESCRIPTIONS",
    "EPISODES_DIR",
    "MAX_TOKENS",
    "PUBLIC_MODULES",
    "TRAINED_BYTES_PER_PARAMETER",
    "VOCABULARY",
    "AlphaScheduleFactory",
    "AppState",
    "BlueprintEntry",
    "BlueprintFactory",
    "BlueprintGenerator",
    "Catalog",
    "CheckpointError",
    "ConfigError",
    "CrucibleTask",
    "DataError",
    "Environments",
    "EpisodeStep",
    "EpisodeStepView",
    "EsperError",
    "Evaluation",
    "EvaluationView",
    "GeneratorFactory",
    "HostEpisode",
    "InProcessEnvironments",
    "LazyCallable",
    "ObservedModel",
    "ObserverFactory",
    "PluginError",
    "PluginSettings",
    "PolicyFactory",
    "PolicyTrainerFactory",
    "Progress",
    "ResolvedRun",
    "ResolvedRunView",
    "RewindableSink",
    "RunConfig",
    "RunConfigView",
    "RunDirBusy",
    "RunDirLock",
    "RunInterrupted",
    "SeedView",
    "SinkFactory",
    "TaskFactory",
    "TelemetryHub",
    "ToSpatial",
    "TrainData",
    "TrainingSession",
    "TrainingSessionProtocol",
    "UnknownNameError",
    "UnreadableTorchFile",
    "WorkerEnvironments",
    "adam",
    "atomic_file",
    "available_memory",
    "build_catalog",
    "build_task",
    "check_compatible",
    "check_header",
    "check_input_file",
    "check_output",
    "check_outside_runs",
    "check_sink_path",
    "check_width",
    "check_writable_dir",
    "declare_blueprints",
    "deferred_logger",
    "effective_config",
    "episode_seed",
    "first_difference",
    "format_table",
    "generator_seed",
    "hookimpl",
    "int_at_least",
    "lazy",
    "load_plugins",
    "load_policy_checkpoint",
    "load_torch_file",
    "make_policy",
    "non_negative_number",
    "one_of",
    "options",
    "parse_key_values",
    "positive_number",
    "prepare_task",
    "read_input_file",
    "require_memory",
    "resolve_run",
    "save_policy_checkpoint",
    "sgd",
    "write_atomic",
    "write_json",
]


def __getattr__(name: str) -> Any:
    try:
        target = _LAZY[name][0]
    except KeyError:
        raise AttributeError(f"module 'esper_core.sdk' has no attribute {name!r}") from None
    module, _, attr = target.partition(":")
    value: Any = importlib.import_module(module)
    if attr:
        value = getattr(value, attr)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # pragma: no cover - what type checkers and editors see
    from esper_core import options
    from esper_core.blueprint_catalog import BlueprintEntry, check_width, declare_blueprints
    from esper_core.cli.app import AppState
    from esper_core.config import RunConfig, parse_key_values
    from esper_core.contracts.factories import (
        AlphaScheduleFactory,
        BlueprintFactory,
        BlueprintGenerator,
        EvaluationView,
        GeneratorFactory,
        ObserverFactory,
        PolicyFactory,
        PolicyTrainerFactory,
        SinkFactory,
        TaskFactory,
    )
    from esper_core.contracts.protocols import RewindableSink
    from esper_core.contracts.seeds import ObservedModel, SeedView
    from esper_core.contracts.training import (
        Environments,
        EpisodeStepView,
        ResolvedRunView,
        RunConfigView,
        TrainingSessionProtocol,
    )
    from esper_core.discovery.batched import ToSpatial, TrainData
    from esper_core.discovery.crucible import Evaluation
    from esper_core.discovery.curriculum import CrucibleTask
    from esper_core.discovery.grammar import MAX_TOKENS
    from esper_core.discovery.tokens import VOCABULARY
    from esper_core.files import (
        UnreadableTorchFile,
        atomic_file,
        check_input_file,
        check_writable_dir,
        load_torch_file,
        read_input_file,
        write_atomic,
        write_json,
    )
    from esper_core.kasmina.optimizers import adam, sgd
    from esper_core.log_config import deferred_logger
    from esper_core.memory import TRAINED_BYTES_PER_PARAMETER, available_memory, require_memory
    from esper_core.options import int_at_least, non_negative_number, one_of, positive_number
    from esper_core.plugins.manager import PluginSettings, load_plugins
    from esper_core.plugins.registry import Catalog, build_catalog
    from esper_core.presentation.progress import Progress
    from esper_core.presentation.table import format_table
    from esper_core.setup.effective_config import effective_config
    from esper_core.setup.policies import make_policy
    from esper_core.setup.resolve import ResolvedRun, resolve_run
    from esper_core.setup.seeding import generator_seed
    from esper_core.setup.tasks import build_task, episode_seed, prepare_task
    from esper_core.storage.outputs import check_output, check_outside_runs, check_sink_path
    from esper_core.storage.policy_checkpoint import (
        check_compatible,
        check_header,
        load_policy_checkpoint,
        save_policy_checkpoint,
    )
    from esper_core.storage.run_checkpoint import first_difference
    from esper_core.storage.rundir import DATASET_FILE, EPISODES_DIR, RunDirBusy, RunDirLock
    from esper_core.telemetry.hub import TelemetryHub
    from esper_core.tolaria.environments import InProcessEnvironments, WorkerEnvironments
    from esper_core.tolaria.episode import EpisodeStep, HostEpisode
    from esper_core.tolaria.interrupts import RunInterrupted
    from esper_core.tolaria.training_session import TrainingSession
