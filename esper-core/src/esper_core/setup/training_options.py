"""The ``[policy]`` options learned policies declare for their trainers (``PolicySpec.
training_options``): which are installed, and whether a run's options fit its policy.

Core names none of them: ``esper run`` offers each declared option as a flag, and a declared
option given to a policy that does not declare it is refused here, naming what it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from esper_core.contracts.specs import PolicySpec, TrainingOption
from esper_core.errors import ConfigError
from esper_core.plugins.registry import Catalog


@frozen
class DeclaredOption:
    """One option name as the installed policies declare it (the first declaration gives its
    flag's type and default)."""

    option: TrainingOption
    policies: tuple[str, ...]


def declared_training_options(catalog: Catalog) -> dict[str, DeclaredOption]:
    """Every training option some installed policy declares, by name, in catalog order."""
    found: dict[str, DeclaredOption] = {}
    for spec in catalog.policies:
        for option in spec.training_options:
            seen = found.get(option.name)
            found[option.name] = DeclaredOption(option if seen is None else seen.option,
                                                (*(seen.policies if seen else ()), spec.name))
    return found


def check_training_options(policy: PolicySpec, catalog: Catalog, options: Mapping[str, Any], *,
                           training: bool) -> None:
    """Refuse a declared training option that this run will not use: the policy is not learned,
    it runs from ``--policy-checkpoint`` (``training`` is False), or it declares no such option."""
    declared = declared_training_options(catalog)
    given = sorted(name for name in declared if name in options)
    if not given:
        return
    first = declared[given[0]].option
    if not training:
        why = ("it is not a learned policy" if not policy.learned
               else "--policy-checkpoint runs a trained policy without training it")
        raise ConfigError(f"[policy] {first.name} ({first.flag}) only applies when training a learned "
                          f"policy; policy {policy.name!r}: {why}")
    own = {o.name for o in policy.training_options}
    foreign = [name for name in given if name not in own]
    if foreign:
        option = declared[foreign[0]]
        accepts = ", ".join(o.flag for o in policy.training_options) or "none"
        raise ConfigError(f"[policy] {option.option.name} ({option.option.flag}) is an option of "
                          f"{_policies(option.policies)}, not of policy {policy.name!r}; the training "
                          f"options {policy.name!r} accepts: {accepts}")


def resume_extension(policy: PolicySpec) -> TrainingOption | None:
    """The option whose larger value lets a finished training run resume and train further."""
    return next((o for o in policy.training_options if o.extends_on_resume), None)


def _policies(names: tuple[str, ...]) -> str:
    quoted = [repr(n) for n in names]
    return ("policy " if len(quoted) == 1 else "policies ") + ", ".join(quoted)
