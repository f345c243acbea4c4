"""The ``transformer`` entry point: blueprints 0, 2, 3, 8–12 and the text tasks.

Torch-free at import: factories are lazy references and parameter counts are integer
arithmetic (:mod:`esper_blueprints_transformer.params`), so ``esper plugins`` and
``esper blueprints`` never import torch.
"""

from __future__ import annotations

from esper_blueprints_transformer import params
from esper_blueprints_transformer.config import GPTConfig
from esper_blueprints_transformer.defaults import TRANSFORMER_DEFAULTS
from esper_core.contracts.specs import BlueprintSpec, TaskSpec
from esper_core.lazy import lazy
from esper_core.markers import hookimpl

TOPOLOGY = "transformer"
_PKG = "esper_blueprints_transformer"
_VASWANI = "Vaswani et al. 2017, Attention Is All You Need (arXiv:1706.03762)"
_LORA = "Hu et al. 2021, LoRA: Low-Rank Adaptation of Large Language Models (arXiv:2106.09685)"

#: Run settings the text tasks recommend (``esper run`` fills in what the user left unset).
TASK_DEFAULTS = {
    "epochs": 25,
    "batch_size": 32,
    "lr": 3e-3,
    "seed_lr": 3e-3,
    "weight_decay": 0.01,
    "optimizer": "adamw",
    "slots": ["layer1", "layer2"],
    "blueprints": ["lora", "attention", "mlp_small", "mlp", "norm"],
}


def _blueprint(name: str, module: str, estimate: object, description: str, index: int, **kw: object) -> BlueprintSpec:
    return BlueprintSpec(
        name=name,
        topology=TOPOLOGY,
        factory=lazy(f"{_PKG}.blueprints.{module}:{name}"),
        param_estimate=estimate,  # type: ignore[arg-type]
        description=description,
        action_index=index,
        **kw,  # type: ignore[arg-type]
    )


@hookimpl
def esper_register_blueprints() -> list[BlueprintSpec]:
    return [
        _blueprint("noop", "residual", params.noop_params, "identity (control arm, no parameters)", 0,
                   identity_at_init=True),
        _blueprint("attention", "attention", params.attention_params,
                   "causal multi-head self-attention residual, zero-initialised output projection", 2,
                   identity_at_init=True, paper=_VASWANI),
        _blueprint("norm", "residual", params.norm_params,
                   "learnable-scaled LayerNorm residual, scale zero-initialised", 3,
                   identity_at_init=True, paper="Ba et al. 2016, Layer Normalization (arXiv:1607.06450)"),
        _blueprint("lora", "residual", params.lora_params,
                   "rank-8 low-rank residual adapter x + B(Ax), B zero-initialised", 8,
                   identity_at_init=True, paper=_LORA),
        _blueprint("lora_large", "residual", params.lora_large_params,
                   "rank-32 low-rank residual adapter x + B(Ax), B zero-initialised", 9,
                   identity_at_init=True, paper=_LORA),
        _blueprint("mlp_small", "residual", params.mlp_small_params,
                   "2x GELU MLP residual, zero-initialised output", 10,
                   identity_at_init=True, paper=_VASWANI),
        _blueprint("mlp", "residual", params.mlp_params,
                   "4x GELU MLP residual, zero-initialised output", 11,
                   identity_at_init=True, paper=_VASWANI),
        _blueprint("flex_attention", "flex", params.attention_params,
                   "causal block-masked attention via FlexAttention, masked-SDPA fallback", 12,
                   identity_at_init=True,
                   paper="Dong et al. 2024, Flex Attention (arXiv:2412.05496); " + _VASWANI,
                   metadata={"torchscript": False}),
    ]


@hookimpl
def esper_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="pytext",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.text:pytext_task"),
            description="next-byte prediction on the Python standard library's own sources (no download)",
            defaults=dict(TASK_DEFAULTS),
            kasmina=TRANSFORMER_DEFAULTS,
            slot_width=GPTConfig().d_model,
        ),
        TaskSpec(
            name="textfile",
            topology=TOPOLOGY,
            factory=lazy(f"{_PKG}.tasks.text:textfile_task"),
            description="next-byte prediction on a UTF-8 text file of your own (option path / --data)",
            defaults=dict(TASK_DEFAULTS),
            kasmina=TRANSFORMER_DEFAULTS,
            slot_width=GPTConfig().d_model,
        ),
    ]
