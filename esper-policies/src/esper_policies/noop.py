"""NoopPolicy: the static baseline that never changes the host."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from esper_core.contracts.decisions import ActionMask, Decision
from esper_core.contracts.protocols import PolicyContext
from esper_core.contracts.reports import EpochReport
from esper_core.options import reject_all

REASON = "noop policy never germinates"


class NoopPolicy:
    """Always WAIT: what the host reaches with no seeds at all."""

    name = "noop"

    @classmethod
    def from_context(cls, *, context: PolicyContext) -> NoopPolicy:
        reject_all(context.options, owner="policy 'noop'")
        return cls()

    def reset(self, *, episode: int) -> None:
        """Nothing to forget: the policy has no state."""

    def state_dict(self) -> dict[str, Any]:
        """Nothing to save: the policy has no state."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore."""

    def decide(self, *, report: EpochReport, mask: ActionMask) -> Decision:
        return Decision.wait(REASON)
