"""The extension-point protocols describe what the engine really hands a plugin: every member a
protocol promises exists on the engine's object (a renamed engine attribute fails here, not in a
third-party plugin), and the runtime-checkable ones accept the engine's instances."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import attrs
import pytest

from esper_core.contracts import factories, seeds, training
from esper_core.contracts.protocols import RewindableSink
from esper_core.contracts.training import TrainingSessionProtocol


def _members(protocol: type) -> set[str]:
    names: set[str] = set()
    for cls in protocol.__mro__:
        if cls in (object, *getattr(protocol, "__orig_bases__", ())) or cls.__name__ in ("Protocol", "Generic"):
            continue
        names |= {n for n in vars(cls) if not n.startswith("_")} | set(getattr(cls, "__annotations__", {}))
    return names


def _has(cls: type, name: str) -> bool:
    fields = {f.name for f in attrs.fields(cls)} if attrs.has(cls) else set()
    return name in fields or hasattr(cls, name)


def _engine(path: str) -> type:
    module, _, attr = path.partition(":")
    return getattr(__import__(module, fromlist=[attr]), attr)  # type: ignore[no-any-return]


PAIRS = [
    (training.TrainingSessionProtocol, "esper_core.tolaria.training_session:TrainingSession"),
    (training.Environments, "esper_core.tolaria.environments:InProcessEnvironments"),
    (training.Environments, "esper_core.tolaria.environments:WorkerEnvironments"),
    (training.EpisodeStepView, "esper_core.tolaria.episode:EpisodeStep"),
    (training.ResolvedRunView, "esper_core.setup.resolve:ResolvedRun"),
    (training.RunConfigView, "esper_core.config:RunConfig"),
    (seeds.ObservedModel, "esper_core.kasmina.model:MorphogeneticModel"),
    (RewindableSink, "esper_core.telemetry.jsonl:JsonlSink"),
    (factories.EvaluationView, "esper_core.discovery.crucible:Evaluation"),
    (factories.BlueprintGenerator, "esper_core.discovery.search:RandomSearch"),
    (factories.BlueprintGenerator, "esper_core.discovery.search:RegularizedEvolution"),
]


@pytest.mark.parametrize(("protocol", "engine"), PAIRS, ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_the_engine_provides_every_member_its_protocol_promises(protocol: type, engine: str) -> None:
    cls = _engine(engine)
    members = _members(protocol)
    assert members, protocol
    missing = sorted(n for n in members if not _has(cls, n))
    assert not missing, f"{engine} lacks {missing} that {protocol.__name__} promises plugins"


def test_the_check_notices_a_missing_member() -> None:
    class Partial:
        def start(self, episodes: Any, seeds: Any) -> None: ...

    assert {"step", "results", "close"} <= {n for n in _members(training.Environments) if not _has(Partial, n)}


def test_a_training_session_is_a_training_session_protocol(tmp_path: Path) -> None:
    cls = _engine("esper_core.tolaria.training_session:TrainingSession")
    session = cls(resolved=None, run_dir=tmp_path, device="cpu", emit=lambda event: None)
    assert isinstance(session, TrainingSessionProtocol)
    assert (session.stop_requested, session.stop_signal) == (False, 0)
    session.stop[0] = 15
    assert (session.stop_requested, session.stop_signal) == (True, 15)


def test_factory_protocols_take_keywords_only() -> None:
    # The engine calls every factory with keywords: a protocol with a positional parameter would
    # promise plugins a call that never happens.
    for protocol in (factories.BlueprintFactory, factories.TaskFactory, factories.PolicyFactory,
                     factories.PolicyTrainerFactory, factories.SinkFactory, factories.ObserverFactory,
                     factories.AlphaScheduleFactory, factories.GeneratorFactory):
        params = list(inspect.signature(protocol.__call__).parameters.values())[1:]
        assert params and all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params), protocol.__name__
