"""NoopPolicy: the static baseline that never changes the host."""

from __future__ import annotations

from esper_core.contracts.decisions import ActionMask, Decision
from esper_core.contracts.protocols import PolicyContext
from esper_core.contracts.reports import EpochReport
from esper_policies._options import reject_options

REASON = "noop policy never germinates"


class NoopPolicy:
    """Always WAIT: what the host reaches with no seeds at all."""

    name = "noop"

    @classmethod
    def from_context(cls, *, context: PolicyContext) -> NoopPolicy:
        reject_options(context.options, owner="noop")
        return cls()

    def reset(self, *, episode: int) -> None:
        """Nothing to forget: the policy has no state."""

    def decide(self, *, report: EpochReport, mask: ActionMask) -> Decision:
        return Decision.wait(REASON)
