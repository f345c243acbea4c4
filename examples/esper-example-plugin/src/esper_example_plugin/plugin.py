"""The ``example`` plugin: the ``cnn:pointwise_mlp`` blueprint, the ``eager`` policy and the
``timeline`` sink.

Esper imports this module whenever it builds its catalog (``esper plugins`` and ``esper --help``
too), so it imports no torch: every factory is a lazy reference, imported on first call.
"""

from __future__ import annotations

from esper_core.contracts.specs import BlueprintSpec, PolicySpec, SinkSpec
from esper_core.lazy import lazy
from esper_core.markers import hookimpl

#: Hidden channels per slot channel in the pointwise MLP.
EXPANSION = 2


def pointwise_mlp_params(width: int) -> int:
    """Exact parameters of ``pointwise_mlp`` for ``width`` channels: two 1×1 convs with biases."""
    hidden = EXPANSION * width
    return (width * hidden + hidden) + (hidden * width + width)


@hookimpl
def esper_register_blueprints() -> list[BlueprintSpec]:
    return [
        BlueprintSpec(
            name="pointwise_mlp",
            topology="cnn",
            factory=lazy("esper_example_plugin.blueprints:pointwise_mlp"),
            param_estimate=pointwise_mlp_params,
            description=f"residual per-pixel MLP (1×1 conv ×{EXPANSION}, GELU, 1×1 conv zero-init)",
            identity_at_init=True,
        )
    ]


@hookimpl
def esper_register_policies() -> list[PolicySpec]:
    return [
        PolicySpec(
            name="eager",
            factory=lazy("esper_example_plugin.policy:EagerPolicy.from_context"),
            description="germinate at every chance, least-used blueprint first; keep seeds that help",
        )
    ]


@hookimpl
def esper_register_telemetry_sinks() -> list[SinkSpec]:
    return [
        SinkSpec(
            name="timeline",
            factory=lazy("esper_example_plugin.timeline:TimelineSink.from_options"),
            description="one tab-separated line per event (epoch, kind, JSON record) in timeline.tsv",
            options=lazy("esper_example_plugin.timeline:TimelineOptions"),
        )
    ]
