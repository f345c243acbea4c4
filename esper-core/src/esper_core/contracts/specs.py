"""Component specifications returned by the ``esper_register_*`` hooks.

Each spec is a frozen attrs record: a name, a short description and a factory. Specs never
hold tensors or modules, only callables that build them, so importing and listing the catalog
never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, frozen, validators

from esper_core.contracts.run_defaults import RunDefaults, as_run_defaults
from esper_core.contracts.settings import TopologyDefaults
from esper_core.contracts.stages import SeedStage
from esper_core.contracts.validators import component_name, is_callable, non_empty_str
from esper_core.lazy import LazyCallable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from esper_core.contracts.factories import (
        AlphaScheduleFactory,
        BlueprintFactory,
        GeneratorFactory,
        ObserverFactory,
        OptionsReader,
        PolicyFactory,
        PolicyTrainerFactory,
        SinkFactory,
        TaskFactory,
    )

#: Action indices 0..33 are reserved for the built-in catalog (DESIGN §8).
RESERVED_ACTION_INDICES = range(0, 34)


def _action_index(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or value not in RESERVED_ACTION_INDICES):
        raise ValueError(f"action_index must be None or in 0..33 (the built-in catalog), got {value!r}")


def _tokens(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _tokens_spatial(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    extent = tuple(value)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in extent):
        raise ValueError(f"TopologySpec.token_spatial must be positive integers, got {value!r}")
    return extent


@frozen(kw_only=True)
class BlueprintSpec:
    """A seed module design that a controller may germinate into a slot.

    ``factory(width=C)`` builds the module for a slot of width ``C`` (channels for CNNs, model
    width for transformers); the module maps a tensor to one of the same shape.
    ``param_estimate(C)`` returns the exact parameter count of that module.
    """

    name: str = field(validator=component_name)
    topology: str = field(validator=component_name)
    factory: BlueprintFactory = field(validator=is_callable, eq=False)
    param_estimate: Callable[[int], int] = field(validator=is_callable, eq=False)
    description: str = field(validator=non_empty_str)
    action_index: int | None = field(default=None, validator=_action_index)
    is_antipattern: bool = field(default=False, validator=validators.instance_of(bool))
    identity_at_init: bool = field(default=False, validator=validators.instance_of(bool))
    tokens: tuple[str, ...] | None = field(default=None, converter=_tokens)
    paper: str | None = None
    metadata: Mapping[str, Any] = field(factory=dict, eq=False)

    @property
    def key(self) -> str:
        """The catalog key, ``topology:name`` (e.g. ``cnn:conv_light``)."""
        return f"{self.topology}:{self.name}"


def _task_defaults(value: Any, spec: Any) -> RunDefaults:  # spec: the TaskSpec being built
    return as_run_defaults(value, f"task {spec.name!r} defaults")


@frozen(kw_only=True)
class TaskSpec:
    """A training task: how to build the data and the host for one episode.

    ``factory(seed=..., device=..., options=...)`` returns a :class:`~esper_core.contracts.
    protocols.Task`. ``defaults`` are the task's recommended run settings, a
    :class:`~esper_core.contracts.run_defaults.RunDefaults` (a flat mapping of its keys is still
    accepted, with a ``DeprecationWarning``), applied where the user set nothing.
    """

    name: str = field(validator=component_name)
    topology: str = field(validator=component_name)
    factory: TaskFactory = field(validator=is_callable, eq=False)
    description: str = field(validator=non_empty_str)
    defaults: RunDefaults = field(
        factory=RunDefaults, eq=False,
        # mypy's attrs plugin reads plain converters only, not attrs.Converter(takes_self=True).
        converter=attrs.Converter(_task_defaults, takes_self=True))  # type: ignore[misc]
    #: Gate thresholds and lifecycle timing recommended for this task's topology.
    kasmina: TopologyDefaults = field(factory=TopologyDefaults)
    #: The widest injection point of the host at default options. Declared here, not read off a
    #: built host, so ``esper blueprints`` can size blueprints as they grow without torch.
    slot_width: int | None = field(
        default=None, validator=validators.optional([validators.instance_of(int), validators.ge(1)]))
    #: ``esper run`` without ``--task`` runs this task; at most one installed task may say so.
    is_default: bool = field(default=False, validator=validators.instance_of(bool))
    #: ``read_options(options=table)`` returns the value of every option ``factory`` uses for
    #: this ``[task]`` table, defaults filled in (an attrs instance or a mapping), raising
    #: ``ConfigError`` for a bad table. Declared, a resumed run or a continued dataset compares
    #: what the options mean, so ``train_size = 8000`` given on resume equals the default it ran
    #: with; undeclared, the tables are compared as written.
    read_options: OptionsReader | None = field(default=None, validator=validators.optional(is_callable),
                                               eq=False)


#: The scalar types a training option may take.
OPTION_TYPES: tuple[type, ...] = (bool, int, float, str)

#: What a policy is for, beyond being chosen by name (``PolicySpec.roles``): ``default`` is what
#: ``esper run`` runs without ``--policy`` and ``baseline`` the no-growth controller it compares
#: against (at most one installed policy each); ``esper evaluate`` compares a trained policy with
#: every ``comparison`` policy unless ``--against`` names others.
POLICY_ROLES = ("default", "baseline", "comparison")


def _option_type(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in OPTION_TYPES:
        raise TypeError(f"TrainingOption.type must be one of bool, int, float, str, got {value!r}")


def _roles(value: Any) -> tuple[str, ...]:
    roles = (value,) if isinstance(value, str) else tuple(value)
    unknown = [r for r in roles if r not in POLICY_ROLES]
    if unknown:
        raise ValueError(f"PolicySpec.roles: unknown role {unknown[0]!r}; roles: {', '.join(POLICY_ROLES)}")
    return roles


@frozen(kw_only=True)
class TrainingOption:
    """A ``[policy]`` option a learned policy's trainer takes, declared so that ``esper run``
    offers it as a flag (``--episode-length`` for ``episode_length``; ``--workers/--no-workers``
    for a bool) and refuses it for policies that do not declare it.

    ``default`` is the trainer's own default, shown in ``esper run --help`` (``None``: it depends
    on the run, say so in ``help``); the trainer still validates the value it receives."""

    name: str = field(validator=validators.matches_re(r"^[a-z][a-z0-9_]*$"))
    type: type = field(validator=_option_type)
    help: str = field(validator=non_empty_str)
    default: Any = None
    #: resuming a finished training run with a larger value trains further; the trainer's
    #: summary records the value reached under the same key (PPO's ``rounds``)
    extends_on_resume: bool = field(default=False, validator=validators.instance_of(bool))

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _training_options(value: Any) -> tuple[TrainingOption, ...]:
    options = tuple(value)
    if not all(isinstance(o, TrainingOption) for o in options):
        raise TypeError(f"PolicySpec.training_options must be TrainingOption records, got {value!r}")
    names = [o.name for o in options]
    if len(set(names)) != len(names):
        raise ValueError(f"PolicySpec.training_options declares a name twice: {names}")
    return options


@frozen(kw_only=True)
class PolicySpec:
    """A Tamiyo controller. ``factory(context=PolicyContext)`` returns a :class:`Policy`.

    A learned controller also gives a ``trainer``: ``trainer(context=PolicyTrainingContext)``
    validates the training options and returns a :class:`PolicyTrainer`. ``esper run`` then
    trains it (unless ``--policy-checkpoint`` names a trained one, which ``factory`` loads from
    ``context.options["checkpoint"]``); its ``training_options`` become ``esper run`` flags.
    """

    name: str = field(validator=component_name)
    factory: PolicyFactory = field(validator=is_callable, eq=False)
    description: str = field(validator=non_empty_str)
    trainer: PolicyTrainerFactory | None = field(
        default=None, validator=validators.optional(is_callable), eq=False)
    #: the ``[policy]`` options its trainer takes that ``esper run`` offers as flags
    training_options: tuple[TrainingOption, ...] = field(default=(), converter=_training_options)
    #: see :data:`POLICY_ROLES`
    roles: tuple[str, ...] = field(default=(), converter=_roles)
    #: ``read_options(options=table)``: every option's value for this ``[policy]`` table, as
    #: :attr:`TaskSpec.read_options` (for a learned policy, the trainer's options, or the acting
    #: options when the table names a ``checkpoint``)
    read_options: OptionsReader | None = field(default=None, validator=validators.optional(is_callable),
                                               eq=False)

    @property
    def learned(self) -> bool:
        return self.trainer is not None


@frozen(kw_only=True)
class GateResult:
    """The outcome of one gate check, with every value it measured and why it decided."""

    gate: str
    target: SeedStage = field(converter=SeedStage)
    passed: bool
    reason: str
    measurements: Mapping[str, float] = field(factory=dict)

    @classmethod
    def combine(cls, target: SeedStage, results: list[GateResult]) -> GateResult:
        """Fold several gate results for one transition: all must pass."""
        failed = [r for r in results if not r.passed]
        measurements: dict[str, float] = {}
        for r in results:
            measurements.update({f"{r.gate}.{k}": v for k, v in r.measurements.items()})
        reason = "; ".join(r.reason for r in (failed or results))
        return cls(
            gate="+".join(r.gate for r in results) or "none",
            target=target,
            passed=not failed,
            reason=reason or "no gate configured",
            measurements=measurements,
        )


@frozen(kw_only=True)
class GateSpec:
    """A check guarding entry into ``target``.

    ``check(context)`` returns a :class:`GateResult`. ``topology`` is ``"*"`` for every
    topology. With ``replaces_default=True`` the gate replaces the built-in gates for that
    target on that topology; otherwise it is an extra check that must also pass.
    """

    name: str = field(validator=component_name)
    target: SeedStage = field(converter=SeedStage)
    check: Callable[..., GateResult] = field(validator=is_callable, eq=False)
    description: str = field(validator=non_empty_str)
    topology: str = "*"
    replaces_default: bool = False
    builtin: bool = False


@frozen(kw_only=True)
class RewardTermSpec:
    """One additive reward term. ``compute(context)`` returns the unweighted value.

    ``presets`` maps a preset name (``shaped``, ``sparse``, ``minimal`` ...) to the weight the
    term has in that preset; a term absent from a preset contributes nothing to it.
    """

    name: str = field(validator=component_name)
    compute: Callable[..., float] = field(validator=is_callable, eq=False)
    description: str = field(validator=non_empty_str)
    presets: Mapping[str, float] = field(factory=dict)


def _options_class(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None or isinstance(value, LazyCallable) or (isinstance(value, type) and attrs.has(value)):
        return
    raise TypeError(f"{type(instance).__name__}.{attribute.name} must be None, an attrs class of options or "
                    f"lazy('package.module:Class'), got {value!r}")


@frozen(kw_only=True)
class SinkSpec:
    """A telemetry sink. ``factory(run_dir=Path | None, options=Mapping)`` returns a Sink.

    ``options``: the attrs class the factory parses its ``[telemetry.<name>]`` table into (or
    ``lazy("package.module:Class")``). Declared, the table is checked when the run is resolved,
    before anything is written and whether or not the run enables the sink, so a misspelt key
    in the table of a sink switched off is refused, not silently kept. ``None``: only the
    factory checks the table, when the sink starts."""

    name: str = field(validator=component_name)
    factory: SinkFactory = field(validator=is_callable, eq=False)
    description: str = field(validator=non_empty_str)
    options: Any = field(default=None, validator=_options_class, eq=False)


@frozen(kw_only=True)
class AlphaScheduleSpec:
    """A blending schedule. ``factory(total_epochs=T, **options)`` returns an AlphaSchedule."""

    name: str = field(validator=component_name)
    factory: AlphaScheduleFactory = field(validator=is_callable, eq=False)
    description: str = field(validator=non_empty_str)


@frozen(kw_only=True)
class ObserverSpec:
    """A training observer. ``factory(model=..., options=Mapping)`` returns an Observer that
    watches one episode's model and adds telemetry events (e.g. anomalies) after each epoch.

    ``options``: as :class:`SinkSpec`'s, for its ``[observers.<name>]`` table."""

    name: str = field(validator=component_name)
    factory: ObserverFactory = field(validator=is_callable, eq=False)
    description: str = field(validator=non_empty_str)
    options: Any = field(default=None, validator=_options_class, eq=False)


@frozen(kw_only=True)
class TopologySpec:
    """A host topology: how a slot of that topology carries its tensor, declared by the
    distribution that provides the topology so that core's tools (the blueprint conformance kit,
    ``esper discover``) build inputs without knowing any topology themselves.

    ``example_input(width=C, size=S, batch=B, generator=torch.Generator)`` returns random inputs
    as a slot of width ``C`` receives them, ``S`` the extent of each other axis (``cnn``:
    ``(B, C, S, S)``; ``transformer``: ``(B, S, C)``).

    ``crucible_tasks()`` returns the Crucible's curriculum for blueprints of this topology
    (:class:`esper_core.sdk.CrucibleTask` records, easiest first): ``esper discover`` searches
    the topology that declares them. ``None``: discovery does not search this topology.

    ``token_spatial`` is the extent of the other axes of the slot a blueprint written in the token
    grammar is checked, priced and compiled for, channels first (``(1, 1)`` for ``cnn``, whose
    slots carry ``(C, H, W)``); ``None``: token blueprints (blueprint libraries from ``esper
    discover``) do not support this topology."""

    name: str = field(validator=component_name)
    description: str = field(validator=non_empty_str)
    example_input: Callable[..., Any] = field(validator=is_callable, eq=False)
    crucible_tasks: Callable[[], Sequence[Any]] | None = field(
        default=None, validator=validators.optional(is_callable), eq=False)
    token_spatial: tuple[int, ...] | None = field(default=None, converter=_tokens_spatial)


@frozen(kw_only=True)
class GeneratorSpec:
    """A blueprint generator for ``esper discover --generator NAME``.

    ``factory(seed=int, options=Mapping)`` returns a
    :class:`~esper_core.contracts.factories.BlueprintGenerator`: ``propose(n) -> token
    sequences`` and ``observe(candidates, evaluations) -> metrics``; ``options`` holds the command's settings
    (``budget``, ``batch_size``, ``tasks`` ...), which a generator may use or ignore."""

    name: str = field(validator=component_name)
    factory: GeneratorFactory = field(validator=is_callable, eq=False)
    description: str = field(validator=non_empty_str)
