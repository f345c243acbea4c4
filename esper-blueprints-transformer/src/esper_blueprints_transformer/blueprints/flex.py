"""Blueprint 12: causal attention through FlexAttention's block-sparse mask.

FlexAttention (Dong et al. 2024, "Flex Attention: A Programming Model for Generating Optimized
Attention Kernels", arXiv:2412.05496) takes the mask as a ``mask_mod`` compiled into a
``BlockMask`` whose fully masked tiles are skipped. Where the API is missing or fails on a device
(old torch, unsupported dtype or head size), the seed computes the same attention with a dense
boolean mask built from the same ``mask_mod`` through ``scaled_dot_product_attention``, and says
so once in the log. Outside ``torch.compile`` FlexAttention runs unfused, which is what a seed
of this size wants on CPU; compiling the whole model fuses it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import structlog
import torch
import torch.nn.functional as F
from torch import nn

from esper_blueprints_transformer.blueprints.attention import CausalAttentionSeed

logger = structlog.get_logger(__name__)


def causal_mask(b: Any, h: Any, q_idx: torch.Tensor, kv_idx: torch.Tensor) -> torch.Tensor:
    """FlexAttention ``mask_mod``: query t may read key s when s ≤ t."""
    return q_idx >= kv_idx


def load_flex() -> tuple[Callable[..., torch.Tensor], Callable[..., Any]]:
    """``(flex_attention, create_block_mask)``; raises ImportError where torch lacks them."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    return flex_attention, create_block_mask


def _quiet(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # Eager FlexAttention warns that it is unfused; running unfused is this seed's choice on CPU
    # (see the module docstring), so the warning would only be noise in every run's log.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"flex_attention called without torch\.compile")
        return fn(*args, **kwargs)


class FlexAttentionSeed(CausalAttentionSeed):
    """The attention seed with FlexAttention as its kernel and masked SDPA as its fallback.

    Same parameters and output as :class:`CausalAttentionSeed`. ``prefer_flex=False`` forces the
    fallback (used to compare both paths). Whether FlexAttention works is decided per device on
    first use by a forward + backward probe, and the choice is kept for the module's lifetime.
    """

    def __init__(self, *, width: int, heads: int | None = None, prefer_flex: bool = True) -> None:
        super().__init__(width=width, heads=heads)
        self.prefer_flex = prefer_flex
        self._flex_ok: dict[tuple[str, bool], bool] = {}
        self._block_masks: dict[tuple[int, str], Any] = {}

    def uses_flex(self, device: torch.device, dtype: torch.dtype = torch.float32, *, grad: bool) -> bool:
        """Whether attention on ``device`` goes through FlexAttention (probing on first ask).

        ``grad`` asks about a pass that will be differentiated: torch 2.14 runs FlexAttention's
        forward on CPU but not its backward, so CPU training takes the fallback while CPU
        evaluation keeps FlexAttention.
        """
        if not self.prefer_flex:
            return False
        key = (str(device), grad)
        if key not in self._flex_ok:
            self._flex_ok[key] = self._probe(device, dtype, grad=grad)
        return self._flex_ok[key]

    def _probe(self, device: torch.device, dtype: torch.dtype, *, grad: bool) -> bool:
        head_dim = self.qkv.out_features // 3 // self.heads
        try:
            flex_attention, create_block_mask = load_flex()
            q = torch.randn(1, 1, 4, head_dim, device=device, dtype=dtype, requires_grad=grad)
            mask = create_block_mask(causal_mask, None, None, 4, 4, device=device)
            with torch.set_grad_enabled(grad):
                out = _quiet(flex_attention, q, q, q, block_mask=mask)
                if grad:
                    out.sum().backward()
        except Exception as exc:  # any failure means "not on this device": fall back, loudly once
            logger.warning(
                "flex_attention_unavailable",
                device=str(device),
                mode="training" if grad else "inference",
                error=f"{type(exc).__name__}: {exc}",
                fallback="scaled_dot_product_attention with a dense causal mask",
            )
            return False
        return True

    def _block_mask(self, t: int, device: torch.device) -> Any:
        key = (t, str(device))
        if key not in self._block_masks:
            _, create_block_mask = load_flex()
            self._block_masks[key] = create_block_mask(causal_mask, None, None, t, t, device=device)
        return self._block_masks[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(x)
        grad = torch.is_grad_enabled() and (x.requires_grad or self.qkv.weight.requires_grad)
        if self.uses_flex(x.device, x.dtype, grad=grad):
            flex_attention, _ = load_flex()
            y = _quiet(flex_attention, q, k, v, block_mask=self._block_mask(x.size(1), x.device))
        else:
            idx = torch.arange(x.size(1), device=x.device)
            dense = causal_mask(None, None, idx[:, None], idx[None, :])
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=dense)
        return self._merge(x, y)


def flex_attention(*, width: int) -> nn.Module:
    """Blueprint 12: causal block-masked attention via FlexAttention, masked-SDPA fallback."""
    return FlexAttentionSeed(width=width)
