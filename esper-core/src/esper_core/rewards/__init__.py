"""Composable reward terms for controller training (DESIGN §7)."""

from esper_core.rewards.function import RewardFunction, RewardResult

__all__ = ["RewardFunction", "RewardResult"]
