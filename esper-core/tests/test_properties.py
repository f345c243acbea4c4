"""Property-based tests (hypothesis): the seed lifecycle state machine, driven with random
commands on a real toy model, and config parsing (round trips and rejections)."""

from __future__ import annotations

import contextlib
import itertools
import string

import pytest
import torch
from engine_helpers import _policies_plugin
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from esper_core.config import MAX_THREADS, RunConfig, dump_toml, read_toml
from esper_core.contracts.events import SeedLifecycle
from esper_core.contracts.stages import (
    BLENDED_STAGES,
    LIVE_STAGES,
    TRANSITIONS,
    SeedStage,
    can_transition,
    check_transition,
)
from esper_core.errors import ConfigError, InvalidTransitionError
from esper_core.kasmina.slot import SEEDED_STAGES
from esper_core.options import INT_MAX, MAX_EPISODES, MAX_EPOCHS
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.setup.tasks import build_model, build_task
from esper_core.storage.run_checkpoint import architecture_state, rebuild_architecture
from esper_core.testing import toy

STAGES = st.sampled_from(list(SeedStage))


@settings(max_examples=300)
@given(src=STAGES, dst=STAGES)
def test_check_transition_follows_the_table(src, dst):
    if dst in TRANSITIONS[src]:
        check_transition(src, dst)
        assert can_transition(src, dst)
    else:
        with pytest.raises(InvalidTransitionError) as info:
            check_transition(src, dst)
        assert f"{src.name} → {dst.name}" in str(info.value)


@settings(max_examples=200)
@given(path=st.lists(STAGES, min_size=1, max_size=30))
def test_every_walk_through_the_table_is_consistent(path):
    """Following any sequence the table allows, FOSSILIZED is absorbing and every culled seed
    passes EMBARGOED and RESETTING before it is DORMANT again."""
    stage, seen = SeedStage.DORMANT, [SeedStage.DORMANT]
    for dst in path:
        if can_transition(stage, dst):
            stage = dst
            seen.append(stage)
    if SeedStage.FOSSILIZED in seen:
        assert seen[-1] is SeedStage.FOSSILIZED
    for a, b in itertools.pairwise(seen):
        if b is SeedStage.DORMANT and a is not SeedStage.UNKNOWN:
            assert a is SeedStage.RESETTING


_CATALOG = build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("p", _policies_plugin())]))
_RESOLVED = resolve_run(RunConfig.from_dict({
    "run": {"task": "toy", "policy": "noop", "epochs": 20},
    "task": {"train_size": 16, "val_size": 8},
    "kasmina": {"blending_epochs": 2, "probation_epochs": 5, "embargo_epochs": 1, "auto_advance": True},
    "gates": {"g2_min_epochs": 0, "g2_gradient_ratio": 0.0, "g2_min_improvement": -100.0, "g3_min_epochs": 0,
              "g3_min_alpha": 0.0, "g5_min_contribution": -100.0},
}), _CATALOG)
_TASK = build_task(_RESOLVED, seed=0, device="cpu")


class Lifecycle(RuleBasedStateMachine):
    """Random germinate/advance/fossilize/cull/epoch commands on a real model. Invariants: every
    emitted transition is in the table, a seed module exists exactly in the seeded stages, α is
    what the stage says, and a checkpoint of the architecture rebuilds the same model."""

    def __init__(self):
        super().__init__()
        self.events = []
        self.model = build_model(_RESOLVED, _TASK, emit=self.events.append)
        self.epoch = 0
        self.x = torch.randn(4, 8)

    def _slot(self, index):
        return self.model.slot_names[index % len(self.model.slot_names)]

    @rule(index=st.integers(0, 3), blueprint=st.sampled_from(_RESOLVED.blueprints))
    def germinate(self, index, blueprint):
        self.model(self.x)  # G1 builds its probe from the last activation shape
        self.model.germinate(self._slot(index), blueprint, epoch=self.epoch, accuracy=50.0)

    @rule(index=st.integers(0, 3))
    def advance(self, index):
        self.model(self.x)
        self.model.advance(self._slot(index), epoch=self.epoch)

    @rule(index=st.integers(0, 3))
    def fossilize(self, index):
        self.model.fossilize(self._slot(index), epoch=self.epoch)

    @rule(index=st.integers(0, 3))
    def cull(self, index):
        slot = self.model.slot(self._slot(index))
        if slot.stage in LIVE_STAGES:
            self.model.cull(slot.name, epoch=self.epoch, reason="property test")
        else:
            with pytest.raises(InvalidTransitionError):
                self.model.cull(slot.name, epoch=self.epoch, reason="property test")

    @rule(contribution=st.floats(-5, 5))
    def epoch_passes(self, contribution):
        self.epoch += 1
        self.model(self.x)
        blended = {s.name: contribution for s in self.model.all_slots() if s.stage in BLENDED_STAGES}
        gains = {s.name: contribution for s in self.model.all_slots() if s.stage is SeedStage.TRAINING}
        self.model.record_validation(contributions=blended, seed_gains=gains, epoch=self.epoch)
        self.model.step_lifecycle(epoch=self.epoch)

    def teardown(self):
        reached = {SeedStage[e.to_stage] for e in self.events if isinstance(e, SeedLifecycle)}
        for stage in (SeedStage.FOSSILIZED, SeedStage.PROBATIONARY, SeedStage.BLENDING, SeedStage.CULLED):
            event(f"reached {stage.name}: {stage in reached}")

    @invariant()
    def transitions_follow_the_table(self):
        for recorded in self.events:
            if isinstance(recorded, SeedLifecycle):
                assert SeedStage[recorded.to_stage] in TRANSITIONS[SeedStage[recorded.from_stage]]

    @invariant()
    def seeds_exist_exactly_in_seeded_stages(self):
        for slot in self.model.all_slots():
            assert (slot.seed is not None) == (slot.stage in SEEDED_STAGES), slot
            alpha = self.model.effective_alpha(slot)
            assert 0.0 <= alpha <= 1.0
            if slot.stage is SeedStage.FOSSILIZED:
                assert alpha == 1.0
            elif slot.stage not in BLENDED_STAGES:
                assert alpha == 0.0

    @precondition(lambda self: any(s.seed is not None for s in self.model.all_slots()))
    @rule()
    def a_checkpoint_rebuilds_the_same_model(self):
        rebuilt = build_model(_RESOLVED, _TASK, emit=lambda event: None)
        rebuild_architecture(rebuilt, architecture_state(self.model), _RESOLVED.blueprints)
        rebuilt.load_state_dict(self.model.state_dict())
        assert [(s.stage, s.blueprint, s.alpha) for s in rebuilt.all_slots()] == \
            [(s.stage, s.blueprint, s.alpha) for s in self.model.all_slots()]
        self.model.eval(), rebuilt.eval()
        with torch.no_grad():
            assert torch.equal(rebuilt(self.x), self.model(self.x))
        self.model.train()


Lifecycle.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
test_lifecycle_state_machine = Lifecycle.TestCase


# ---------------------------------------------------------------------- config parsing
NAMES = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8).filter(lambda s: s.strip("_"))
VALID_RUN = st.fixed_dictionaries({}, optional={
    "epochs": st.integers(1, 500),
    "episodes": st.integers(1, 50),
    "seed": st.integers(0, 2**31),
    "device": st.sampled_from(["auto", "cpu", "cuda", "cuda:1"]),
    "max_seeds": st.integers(1, 8),
    "param_budget": st.integers(0, 10**7),
    "compare_baseline": st.booleans(),
    "deterministic": st.booleans(),
    "threads": st.integers(0, 64),
    "checkpoint_keep": st.integers(1, 20),
    "blueprints": st.lists(NAMES, min_size=1, max_size=4),
    "out": NAMES,
})
VALID_TRAINING = st.fixed_dictionaries({}, optional={
    "lr": st.floats(1e-6, 10.0), "batch_size": st.integers(1, 4096),
    "optimizer": st.sampled_from(["adamw", "sgd"]), "lr_schedule": st.sampled_from(["constant", "step", "cosine"]),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run=VALID_RUN, training=VALID_TRAINING, task=st.dictionaries(NAMES, st.integers() | st.booleans() | NAMES,
                                                                     max_size=3))
def test_valid_configs_round_trip_through_toml(tmp_path, run, training, task):
    config = RunConfig.from_dict({"run": run, "training": training, "task": task})
    path = tmp_path / "c.toml"
    path.write_text(dump_toml(config.to_dict()))
    assert RunConfig.from_dict(read_toml(path)) == config


INT_KEYS = ["epochs", "episodes", "seed", "max_seeds", "threads", "checkpoint_keep"]
MINIMUM = {"epochs": 1, "episodes": 1, "seed": 0, "max_seeds": 1, "threads": 0, "checkpoint_keep": 1}
#: torch takes 64-bit integers; a huge thread count crashes it; a mistyped episode or epoch count
#: would run until killed
MAXIMUM = {**dict.fromkeys(INT_KEYS, INT_MAX), "threads": MAX_THREADS, "episodes": MAX_EPISODES, "epochs": MAX_EPOCHS}


@settings(max_examples=200)
@given(key=st.sampled_from(INT_KEYS),
       value=st.one_of(st.integers(-10**6, 10**6), st.integers(INT_MAX - 2, 2**65), st.floats(allow_nan=True),
                       st.text(max_size=4), st.booleans(), st.lists(st.integers(), max_size=2), st.none()))
def test_integer_keys_accept_exactly_their_range(key, value):
    if value is None:  # an absent override: the default stays
        assert getattr(RunConfig.from_dict({}, {key: value}), key) == getattr(RunConfig(), key)
        return
    valid = isinstance(value, int) and not isinstance(value, bool) and MINIMUM[key] <= value <= MAXIMUM[key]
    if valid:
        assert getattr(RunConfig.from_dict({"run": {key: value}}), key) == value
    else:
        with pytest.raises(ConfigError, match=f"{key} = .* is invalid; expected an integer ≥ {MINIMUM[key]}"):
            RunConfig.from_dict({"run": {key: value}})


@settings(max_examples=150)
@given(table=st.sampled_from(["run", "training"]), key=NAMES)
def test_unknown_keys_are_named(table, key):
    known = {a for a in (RunConfig.__attrs_attrs__ if table == "run" else RunConfig().training.__attrs_attrs__)}
    if key in {a.name for a in known}:
        return
    with pytest.raises(ConfigError, match=f"^\\[{table}\\]: unknown key '{key}'.*; allowed keys: "):
        RunConfig.from_dict({table: {key: 1}})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_any_text_is_a_config_or_a_config_error(tmp_path, text):
    path = tmp_path / "any.toml"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(ConfigError):
        RunConfig.from_sources(path)
