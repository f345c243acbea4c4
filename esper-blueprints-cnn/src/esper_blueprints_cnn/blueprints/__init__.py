"""CNN seed modules (DESIGN §8), grouped by family.

Every factory is keyword-only, ``fn(*, width: int) -> nn.Module``; each module maps an
``(N, width, H, W)`` tensor to one of the same shape, for any ``width >= 1`` and any
``H, W >= 1``, and is TorchScript-scriptable. Seeds that must not disturb the host at
germination start exactly at identity: their last layer or output scale is zero-initialised.
"""
