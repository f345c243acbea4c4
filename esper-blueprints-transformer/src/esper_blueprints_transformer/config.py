"""Shape and regularisation of the GPT host (torch-free, validated)."""

from __future__ import annotations

from attrs import field, frozen

from esper_core.errors import ConfigError
from esper_core.options import int_at_least, number_in


@frozen(kw_only=True)
class GPTConfig:
    """A pre-norm GPT (Radford et al. 2019): ``n_layers`` blocks of width ``d_model``.

    A seed slot sits after every ``layers_per_point`` blocks, so the host has
    ``n_layers // layers_per_point`` injection points named ``layer1``, ``layer2`` ...
    """

    vocab_size: int = field(default=256, validator=int_at_least(2))
    context: int = field(default=64, validator=int_at_least(1))
    n_layers: int = field(default=2, validator=int_at_least(1))
    d_model: int = field(default=64, validator=int_at_least(1))
    n_heads: int = field(default=4, validator=int_at_least(1))
    dropout: float = field(default=0.0, validator=number_in(0.0, 1.0, high_open=True))
    layers_per_point: int = field(default=1, validator=int_at_least(1))

    def __attrs_post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"d_model = {self.d_model} is not divisible by n_heads = {self.n_heads}; "
                "choose n_heads among the divisors of d_model"
            )
        if self.n_layers % self.layers_per_point:
            raise ConfigError(
                f"n_layers = {self.n_layers} is not a multiple of layers_per_point = "
                f"{self.layers_per_point}"
            )

    @property
    def parameter_count(self) -> int:
        """Parameters of the host this builds, counted without building it: token and position
        embeddings; per block two LayerNorms (2d each), attention's fused QKV and output
        projection with biases (4d² + 4d) and the MLP's d → 4d → d with biases (8d² + 5d); the
        final LayerNorm. The LM head's weight is the token embedding's, counted once."""
        d = self.d_model
        return (self.vocab_size + self.context) * d + self.n_layers * (12 * d * d + 13 * d) + 2 * d

    @property
    def point_names(self) -> tuple[str, ...]:
        return tuple(f"layer{i + 1}" for i in range(self.n_layers // self.layers_per_point))
