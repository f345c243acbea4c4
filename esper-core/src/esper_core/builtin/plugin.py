"""Built-in behaviour, registered through the same hooks a third-party plugin uses.

Everything here is a lazy reference or a torch-free callable, so listing plugins never imports
torch.
"""

from __future__ import annotations

from esper_core.contracts.specs import AlphaScheduleSpec, GateSpec, GeneratorSpec, RewardTermSpec, SinkSpec
from esper_core.contracts.stages import SeedStage
from esper_core.lazy import lazy
from esper_core.markers import hookimpl


@hookimpl
def esper_register_gates() -> list[GateSpec]:
    gates = "esper_core.kasmina.gates"
    return [
        GateSpec(name="g0_blueprint_fits", target=SeedStage.GERMINATED, builtin=True,
                 check=lazy(f"{gates}:g0_blueprint_fits"),
                 description="blueprint exists, fits the topology and the parameter budget"),
        GateSpec(name="g1_shape_and_finite", target=SeedStage.TRAINING, builtin=True,
                 check=lazy(f"{gates}:g1_shape_and_finite"),
                 description="seed output has the input's shape and is finite on a probe batch"),
        GateSpec(name="g2_gradient_readiness", target=SeedStage.BLENDING, builtin=True,
                 check=lazy(f"{gates}:g2_gradient_readiness"),
                 description="min epochs, seed gain and parameter-normalised gradient ratio"),
        GateSpec(name="g3_blending_complete", target=SeedStage.SHADOWING, builtin=True,
                 check=lazy(f"{gates}:g3_blending_complete"),
                 description="alpha reached its threshold after the minimum blending epochs"),
        GateSpec(name="g4_stability", target=SeedStage.PROBATIONARY, builtin=True,
                 check=lazy(f"{gates}:g4_stability"),
                 description="finite values and a non-negative contribution over the window"),
        GateSpec(name="g5_contribution", target=SeedStage.FOSSILIZED, builtin=True,
                 check=lazy(f"{gates}:g5_contribution"),
                 description="counterfactual contribution above threshold and healthy"),
    ]


@hookimpl
def esper_register_alpha_schedules() -> list[AlphaScheduleSpec]:
    alpha = "esper_core.kasmina.alpha"
    return [
        AlphaScheduleSpec(name="tanh", factory=lazy(f"{alpha}:tanh_schedule"),
                          description="½(1 + tanh(½(k − T/2)/temp)), clamped to 0 and 1 at the ends"),
        AlphaScheduleSpec(name="linear", factory=lazy(f"{alpha}:linear_schedule"),
                          description="k / T"),
        AlphaScheduleSpec(name="cosine", factory=lazy(f"{alpha}:cosine_schedule"),
                          description="½(1 − cos(πk/T))"),
    ]


@hookimpl
def esper_register_reward_terms() -> list[RewardTermSpec]:
    from esper_core.rewards import terms

    return terms.builtin_reward_terms()


@hookimpl
def esper_register_telemetry_sinks() -> list[SinkSpec]:
    return [
        SinkSpec(name="jsonl", factory=lazy("esper_core.storage.outputs:open_jsonl_sink"),
                 description="one JSON event per line in events.jsonl, flushed every epoch",
                 options=lazy("esper_core.telemetry.jsonl:JsonlOptions")),
    ]


@hookimpl
def esper_register_generators() -> list[GeneratorSpec]:
    search = "esper_core.discovery.search"
    return [
        GeneratorSpec(name="random", factory=lazy(f"{search}:random_search"),
                      description="random search: independent programs drawn from the grammar"),
        GeneratorSpec(name="evolution", factory=lazy(f"{search}:regularized_evolution"),
                      description="regularised (aging) evolution, Real et al. 2019 (options: population, "
                                  "sample)"),
    ]
