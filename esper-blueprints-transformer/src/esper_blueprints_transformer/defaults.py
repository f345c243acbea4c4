"""Seed-mechanics defaults of the transformer topology (torch-free).

The numbers come from ``benchmarks/measure_transformer_gates.py`` on the default ``pytext``
task; the README records the measurements behind them.
"""

from __future__ import annotations

from esper_core.contracts.settings import GateThresholds, LifecycleSettings, TopologyDefaults

TRANSFORMER_DEFAULTS = TopologyDefaults(
    gates=GateThresholds(
        g2_min_epochs=2,
        g2_gradient_ratio=0.05,
        g3_min_epochs=3,
    ),
    # Seeds here are residual branches on the residual stream (s(x) = x + f(x)). Detaching x while
    # blending would scale the gradient reaching every earlier layer by (1 − α), starving them as
    # α → 1; keeping the host attached lets the stream keep learning through the seed.
    lifecycle=LifecycleSettings(detach_host_in_blending=False),
)
