"""The ``transformer`` entry point: blueprints 0, 2, 3, 8–12 and the text tasks.

Torch-free at import: blueprints are declared with :mod:`esper_core.blueprint_catalog`
(factories are ``module:attr`` paths, imported when a seed is built) and parameter counts are
integer arithmetic (:mod:`esper_blueprints_transformer.params`), so ``esper plugins`` and
``esper blueprints`` never import torch.
"""

from __future__ import annotations

from esper_blueprints_transformer import params
from esper_blueprints_transformer.config import GPTConfig
from esper_blueprints_transformer.defaults import TRANSFORMER_DEFAULTS
from esper_core.contracts.run_defaults import RunDefaults, TrainingSettings
from esper_core.contracts.specs import BlueprintSpec, TaskSpec, TopologySpec
from esper_core.lazy import lazy
from esper_core.markers import hookimpl
from esper_core.sdk import BlueprintEntry, declare_blueprints

TOPOLOGY = "transformer"
_PKG = "esper_blueprints_transformer"
_VASWANI = "Vaswani et al. 2017, Attention Is All You Need (arXiv:1706.03762)"
_LORA = "Hu et al. 2021, LoRA: Low-Rank Adaptation of Large Language Models (arXiv:2106.09685)"

#: Run settings the text tasks recommend (``esper run`` fills in what the user left unset).
TASK_DEFAULTS = RunDefaults(
    epochs=25,
    slots=("layer1", "layer2"),
    blueprints=("lora", "attention", "mlp_small", "mlp", "norm"),
    training=TrainingSettings(batch_size=32, lr=3e-3, seed_lr=3e-3, weight_decay=0.01, optimizer="adamw"),
)


#: Blueprints 0, 2, 3 and 8–12 (DESIGN §8), each the identity at initialisation.
BLUEPRINTS: tuple[BlueprintEntry, ...] = (
    BlueprintEntry(index=0, name="noop", factory="residual:noop", estimate=params.noop_params,
                   description="identity (control arm, no parameters)", identity_at_init=True),
    BlueprintEntry(index=2, name="attention", factory="attention:attention", estimate=params.attention_params,
                   description="causal multi-head self-attention residual, zero-initialised output projection",
                   identity_at_init=True, paper=_VASWANI),
    BlueprintEntry(index=3, name="norm", factory="residual:norm", estimate=params.norm_params,
                   description="learnable-scaled LayerNorm residual, scale zero-initialised",
                   identity_at_init=True, paper="Ba et al. 2016, Layer Normalization (arXiv:1607.06450)"),
    BlueprintEntry(index=8, name="lora", factory="residual:lora", estimate=params.lora_params,
                   description="rank-8 low-rank residual adapter x + B(Ax), B zero-initialised",
                   identity_at_init=True, paper=_LORA),
    BlueprintEntry(index=9, name="lora_large", factory="residual:lora_large", estimate=params.lora_large_params,
                   description="rank-32 low-rank residual adapter x + B(Ax), B zero-initialised",
                   identity_at_init=True, paper=_LORA),
    BlueprintEntry(index=10, name="mlp_small", factory="residual:mlp_small", estimate=params.mlp_small_params,
                   description="2x GELU MLP residual, zero-initialised output",
                   identity_at_init=True, paper=_VASWANI),
    BlueprintEntry(index=11, name="mlp", factory="residual:mlp", estimate=params.mlp_params,
                   description="4x GELU MLP residual, zero-initialised output",
                   identity_at_init=True, paper=_VASWANI),
    BlueprintEntry(index=12, name="flex_attention", factory="flex:flex_attention", estimate=params.attention_params,
                   description="causal block-masked attention via FlexAttention, masked-SDPA fallback",
                   identity_at_init=True,
                   paper="Dong et al. 2024, Flex Attention (arXiv:2412.05496); " + _VASWANI,
                   metadata={"torchscript": False}),
)


@hookimpl
def esper_register_blueprints() -> list[BlueprintSpec]:
    return declare_blueprints(topology=TOPOLOGY, factories=f"{_PKG}.blueprints", entries=BLUEPRINTS)


@hookimpl
def esper_register_topologies() -> list[TopologySpec]:
    return [TopologySpec(name=TOPOLOGY, description="decoder-only transformers: a slot carries (batch, sequence, C)",
                         example_input=lazy(f"{_PKG}.topology:example_input"))]


@hookimpl
def esper_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="pytext",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.text:pytext_task"),
            read_options=lazy(f"{_PKG}.tasks.options:read_pytext_options"),
            description="next-byte prediction on the Python standard library's own sources (no download)",
            defaults=TASK_DEFAULTS,
            kasmina=TRANSFORMER_DEFAULTS,
            slot_width=GPTConfig().d_model,
        ),
        TaskSpec(
            name="textfile",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.text:textfile_task"),
            read_options=lazy(f"{_PKG}.tasks.options:read_textfile_options"),
            description="next-byte prediction on a UTF-8 text file of your own (option path / --data)",
            defaults=TASK_DEFAULTS,
            kasmina=TRANSFORMER_DEFAULTS,
            slot_width=GPTConfig().d_model,
        ),
    ]
