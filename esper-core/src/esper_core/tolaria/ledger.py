"""Bookkeeping of every seed germinated during an episode, built from lifecycle events."""

from __future__ import annotations

from typing import Any

from attrs import define, field

from esper_core.contracts.events import SeedLifecycle
from esper_core.contracts.reports import SlotReport
from esper_core.contracts.stages import SeedStage


@define
class SeedRecord:
    slot: str
    blueprint: str | None
    germinated_epoch: int
    outcome: str = "live"
    ended_epoch: int | None = None
    #: dependence on the seed (accuracy lost when it is removed), last measured from BLENDING on
    contribution: float | None = None
    params: int = 0
    #: gain over the no-seed path, last measured in TRAINING (before the host adapted to it)
    seed_gain: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "blueprint": self.blueprint,
            "germinated_epoch": self.germinated_epoch,
            "outcome": self.outcome,
            "ended_epoch": self.ended_epoch,
            "seed_gain": self.seed_gain,
            "contribution": self.contribution,
            "params": self.params,
        }


@define
class SeedLedger:
    """One :class:`SeedRecord` per germination, closed on fossilize or cull."""

    records: list[SeedRecord] = field(factory=list)
    _open: dict[str, SeedRecord] = field(factory=dict, alias="_open")

    def on_transition(self, event: SeedLifecycle) -> None:
        to = SeedStage[event.to_stage]
        if to is SeedStage.GERMINATED:
            record = SeedRecord(slot=event.slot, blueprint=event.blueprint, germinated_epoch=event.epoch)
            self.records.append(record)
            self._open[event.slot] = record
        elif to in (SeedStage.FOSSILIZED, SeedStage.CULLED) and event.slot in self._open:
            record = self._open.pop(event.slot)
            record.outcome = "fossilized" if to is SeedStage.FOSSILIZED else "culled"
            record.ended_epoch = event.epoch

    def on_epoch(self, slots: tuple[SlotReport, ...]) -> None:
        """Keep the latest gain, dependence and size of every open seed."""
        for report in slots:
            record = self._open.get(report.slot)
            if record is not None:
                if report.contribution is not None:
                    record.contribution = report.contribution
                if report.seed_gain is not None and report.stage is SeedStage.TRAINING:
                    record.seed_gain = report.seed_gain
                record.params = report.seed_params
