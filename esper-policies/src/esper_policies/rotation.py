"""Blueprint rotation with cull penalties (the heuristic's blueprint chooser).

The heuristic cycles through the blueprints the mask allows so that every design gets tried.
A blueprint whose seed was culled gets a penalty (+2 by default) that decays ×0.5 per epoch;
while its penalty is above the threshold (3) the rotation skips it. If every allowed blueprint
is above the threshold, the least penalised one is used (ties in rotation order).

Decay happens exactly once per epoch, through :meth:`BlueprintRotation.advance_to`, however
many blueprints are picked in that epoch: decaying on every pick (as the original did) made two
germinations in quick succession wipe out a penalty that should have lasted several epochs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import frozen


@frozen(kw_only=True)
class BlueprintPick:
    """A chosen blueprint and why."""

    key: str
    penalty: float
    #: True when every allowed blueprint was above the threshold.
    fallback: bool
    #: blueprints passed over because their penalty was above the threshold.
    skipped: tuple[str, ...]

    def describe(self, threshold: float) -> str:
        if self.fallback:
            return (f"every allowed blueprint penalised above {threshold:g}: least penalised "
                    f"{self.key} (penalty {self.penalty:.2f})")
        text = f"next in rotation, penalty {self.penalty:.2f}"
        if self.skipped:
            text += f"; skipped {', '.join(self.skipped)} (penalty > {threshold:g})"
        return text


class BlueprintRotation:
    """Round-robin over catalog keys with decaying cull penalties (or, with ``rotate=False``,
    always the first key in preference order that is not penalised: the keys passed to
    :meth:`prefer`, latest first, then the catalog order)."""

    def __init__(
        self,
        keys: Sequence[str],
        *,
        penalty_on_cull: float = 2.0,
        decay: float = 0.5,
        threshold: float = 3.0,
        rotate: bool = True,
    ) -> None:
        self._keys: list[str] = list(dict.fromkeys(keys))
        #: False: every pick starts from the first key (the catalog order is a preference
        #: order), so a blueprint is used again until it is culled.
        self.rotate = rotate
        self.penalty_on_cull = penalty_on_cull
        self.decay = decay
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        self._penalties: dict[str, float] = {}
        self._next = 0
        self._epoch = 0
        #: keys passed to :meth:`prefer`, latest first (the head of the preference order)
        self._preferred: list[str] = []

    def state_dict(self) -> dict[str, Any]:
        """Keys seen, penalties, the round-robin position and the preferred keys (for run checkpoints)."""
        return {"keys": list(self._keys), "penalties": dict(self._penalties), "next": self._next,
                "epoch": self._epoch, "preferred": list(self._preferred)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._keys = list(state["keys"])
        self._penalties = dict(state["penalties"])
        self._next = state["next"]
        self._epoch = state["epoch"]
        # Checkpoints written before preferences applied without rotation have none to restore.
        self._preferred = list(state.get("preferred", ()))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._keys)

    @property
    def penalties(self) -> dict[str, float]:
        """Current penalties (a copy); blueprints never culled are absent (penalty 0)."""
        return dict(self._penalties)

    def penalty(self, key: str) -> float:
        return self._penalties.get(key, 0.0)

    def advance_to(self, epoch: int) -> None:
        """Apply the per-epoch decay for every epoch since the last call (idempotent per epoch)."""
        if epoch <= self._epoch:
            return
        factor = self.decay ** (epoch - self._epoch)
        self._epoch = epoch
        # Drop negligible penalties so the mapping stays small and reasons stay readable.
        self._penalties = {k: p * factor for k, p in self._penalties.items() if p * factor >= 1e-6}

    def prefer(self, key: str) -> None:
        """Try ``key`` first at the next pick (e.g. a blueprint that just proved itself). In
        rotation the round-robin continues from it; without rotation it heads the preference
        order from now on, so it is used again until it is culled."""
        self._remember(key)
        self._next = self._keys.index(key)
        self._preferred = [key, *(k for k in self._preferred if k != key)]

    def penalise(self, key: str) -> float:
        """Add the cull penalty to ``key``; returns its new penalty."""
        self._remember(key)
        self._penalties[key] = self.penalty(key) + self.penalty_on_cull
        return self._penalties[key]

    def pick(self, allowed: Iterable[str]) -> BlueprintPick:
        """Choose among ``allowed`` (raises ``ValueError`` when it is empty)."""
        allowed_set = set(allowed)
        for key in sorted(allowed_set - set(self._keys)):
            self._remember(key)
        n = len(self._keys)
        if self.rotate:
            order = [self._keys[(self._next + i) % n] for i in range(n)]
        else:
            order = [*self._preferred, *(k for k in self._keys if k not in self._preferred)]
        candidates = [k for k in order if k in allowed_set]
        if not candidates:
            raise ValueError("no blueprint is allowed: nothing to pick from")
        skipped: list[str] = []
        chosen: str | None = None
        for key in candidates:
            if self.penalty(key) > self.threshold:
                skipped.append(key)
                continue
            chosen = key
            break
        fallback = chosen is None
        if chosen is None:
            chosen = min(candidates, key=self.penalty)  # min is stable: rotation order on ties
            skipped = []
        self._next = (self._keys.index(chosen) + 1) % n
        return BlueprintPick(key=chosen, penalty=self.penalty(chosen), fallback=fallback,
                             skipped=tuple(skipped))

    def _remember(self, key: str) -> None:
        if key not in self._keys:
            self._keys.append(key)
