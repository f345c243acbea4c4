"""Curriculum ordering of the anti-patterns: clearest failure signal first (seed 000).

Stage 1 offers the catastrophic failures (immediate NaN, immediate punishment), stage 2 adds
the gradient killers (clear gradient telemetry), stage 3 the deceptive patterns (need cost
awareness), stage 4 the subtle degraders (need long-horizon evaluation). Within a family the
order is seed 000's "Ordering" list. Pass the result to a run as its blueprint list::

    from esper_antipatterns.curriculum import curriculum
    names = curriculum(2)          # what to offer in stage 2 (catastrophic + gradient killers)
    # esper run --blueprints conv_light,noop,<",".join(names)> ...
"""

from __future__ import annotations

from esper_antipatterns.catalog import BY_NAME, TOPOLOGY, TRANSFORMER, Antipattern, Category

#: Per family, the order of seed 000's "Ordering" section.
_ORDER: dict[Category, tuple[str, ...]] = {
    Category.CATASTROPHIC: ("division_by_feature", "kaiming_mismatch"),
    Category.GRADIENT_KILLER: ("sigmoid_sandwich", "gain_amplifier", "deep_linear_stack"),
    Category.DECEPTIVE: ("expensive_identity", "redundant_ensemble"),
    Category.SUBTLE: ("correlated_noise", "asymmetric_bottleneck", "momentum_dampener"),
}

N_STAGES = len(Category)


def members(category: Category | str) -> list[str]:
    """The anti-patterns of one family, in curriculum order."""
    return list(_ORDER[_category(category)])


def curriculum_order() -> list[Antipattern]:
    """All ten entries in curriculum order."""
    return [BY_NAME[name] for category in Category for name in _ORDER[category]]


def curriculum(stage: str | int | None = None) -> list[str]:
    """Anti-pattern names to offer at a curriculum ``stage``, easiest to learn first.

    ``None`` gives all ten. An integer ``k`` (1–4, or its string form) gives every family
    introduced up to stage ``k`` — cumulative, so earlier lessons keep being offered. A
    family name (``catastrophic``, ``gradient_killer``, ``deceptive``, ``subtle``) gives every
    family up to and including that one.
    """
    if stage is None:
        last = N_STAGES
    elif isinstance(stage, bool):
        raise TypeError(f"stage must be a stage number, a category name or None, got {stage!r}")
    elif isinstance(stage, int) or (isinstance(stage, str) and stage.strip().isdigit()):
        last = int(stage)
        if not 1 <= last <= N_STAGES:
            raise ValueError(f"curriculum stage must be 1..{N_STAGES}, got {stage!r}")
    elif isinstance(stage, str):
        last = _category(stage).stage
    else:
        raise TypeError(f"stage must be a stage number, a category name or None, got {stage!r}")
    return [name for category in list(Category)[:last] for name in _ORDER[category]]


def blueprint_keys(stage: str | int | None = None, *, topology: str = TOPOLOGY) -> list[str]:
    """:func:`curriculum` as catalog keys (``cnn:name``, or ``transformer:name`` for the
    transformer forms)."""
    if topology not in (TOPOLOGY, TRANSFORMER):
        raise ValueError(f"anti-patterns exist for topologies {TOPOLOGY} and {TRANSFORMER}, not {topology!r}")
    return [f"{topology}:{name}" for name in curriculum(stage)]


def _category(value: Category | str) -> Category:
    try:
        return Category(value.strip().lower().replace("-", "_") if isinstance(value, str) else value)
    except ValueError:
        known = ", ".join(c.value for c in Category)
        raise ValueError(f"unknown anti-pattern category {value!r}; known: {known}") from None
