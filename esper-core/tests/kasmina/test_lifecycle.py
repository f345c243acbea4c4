import pytest
import torch
from kasmina_helpers import PERMISSIVE, TinyHost, build_model, linear_blueprint, set_stage, toy_data

from esper_core.contracts import (
    GateEvaluated,
    GateThresholds,
    LifecycleSettings,
    SeedLifecycle,
    SeedStage,
)
from esper_core.errors import ConfigError, InvalidTransitionError, PluginError
from esper_core.kasmina import MorphogeneticModel

S = SeedStage


def test_unknown_slot_names_list_the_points():
    with pytest.raises(ConfigError, match="p0, p1"):
        build_model(slots=["p0", "nope"])
    with pytest.raises(ConfigError, match="repeat"):
        build_model(slots=["p0", "p0"])
    with pytest.raises(ConfigError, match="alpha schedule"):
        build_model(lifecycle=LifecycleSettings(alpha_schedule="zigzag"))
    with pytest.raises(ConfigError, match="segmented host"):
        build_model(torch.nn.Linear(2, 2))
    model = build_model()
    with pytest.raises(ConfigError, match="p0, p1"):
        model.slot("zz")


def test_broken_host_segments():
    host = TinyHost(2)
    host.segments = torch.nn.ModuleList(list(host.segments)[:2])
    with pytest.raises(ConfigError, match="segments"):
        build_model(host)


def test_subset_of_slots_and_passthrough():
    model = build_model(TinyHost(3), slots=["p2", "p0"])
    assert model.slot_names == ("p0", "p2")
    assert [r.index for r in model.slot_reports()] == [0, 1]
    x, _ = toy_data(1)[0]
    assert torch.equal(model(x), model.host(x))


def test_germinate_builds_on_host_dtype_and_emits(events):
    host = TinyHost().double()
    model = build_model(host, events=events)
    result = model.germinate("p0", linear_blueprint(), epoch=2, accuracy=55.0)
    assert result.passed
    slot = model.slot("p0")
    assert slot.stage is S.GERMINATED
    assert next(slot.seed.parameters()).dtype == torch.float64
    assert [type(e) for e in events] == [GateEvaluated, SeedLifecycle]
    assert events[1].from_stage == "DORMANT" and events[1].to_stage == "GERMINATED" and events[1].epoch == 2
    (report,) = [r for r in model.slot_reports() if r.slot == "p0"]
    assert report.blueprint == "cnn:lin" and report.germinated_epoch == 2
    assert report.accuracy_at_germination == 55.0 and report.seed_params == 72
    assert model.param_counts().seeds == {"p0": 72}
    again = model.germinate("p0", linear_blueprint(), epoch=3)
    assert not again.passed and "not DORMANT" in again.reason


def test_germinate_refused_by_budget_changes_nothing(events):
    model = build_model(param_budget=10, events=events)
    result = model.germinate("p0", linear_blueprint(), epoch=0)
    assert not result.passed and model.slot("p0").stage is S.DORMANT and model.slot("p0").seed is None
    assert [type(e) for e in events] == [GateEvaluated]


def test_germinate_rejects_non_module_factory():
    model = build_model()
    with pytest.raises(PluginError, match="not an nn.Module"):
        model.germinate("p0", linear_blueprint(factory=lambda *, width: 3), epoch=0)


def test_advance_fossilize_cull_on_wrong_stage():
    model = build_model()
    res = model.advance("p0", epoch=0)
    assert not res.passed and "germinate it first" in res.reason
    assert not model.fossilize("p0", epoch=0).passed
    with pytest.raises(InvalidTransitionError, match="DORMANT → CULLED"):
        model.cull("p0", epoch=0, reason="x")
    set_stage(model, "p0", S.FOSSILIZED)
    assert not model.advance("p0", epoch=0).passed
    with pytest.raises(InvalidTransitionError):
        model.cull("p0", epoch=0, reason="x")


def test_manual_happy_path_to_fossilized(events):
    model = build_model(thresholds=PERMISSIVE, lifecycle=LifecycleSettings(auto_advance=False),
                        events=events)
    x, _ = toy_data(1)[0]
    model.germinate("p1", linear_blueprint(), epoch=0)
    model(x)
    assert model.advance("p1", epoch=0).passed  # G1
    assert not model.advance("p1", epoch=0).passed  # G2: seed gain not measured
    model.record_validation(contributions={}, seed_gains={"p1": 0.0}, epoch=0)
    assert model.advance("p1", epoch=1).passed
    assert model.slot("p1").stage is S.BLENDING and model.slot("p1").alpha > 0
    assert model.advance("p1", epoch=1).passed  # G3 (permissive)
    model.step_lifecycle(epoch=2)
    model.record_validation(contributions={"p1": 0.3}, seed_gains={}, epoch=2)
    assert model.advance("p1", epoch=2).passed  # G4
    assert model.advance("p1", epoch=2).passed  # → fossilize via G5
    slot = model.slot("p1")
    assert slot.stage is S.FOSSILIZED and model.effective_alpha(slot) == 1.0
    counts = model.param_counts()
    assert counts.seeds == {} and counts.fossilized == 72 and counts.total == counts.host + 72
    assert set(map(id, slot.seed.parameters())) <= set(map(id, model.host_parameters()))
    assert any(k.startswith("slots.p1.seed.") for k in model.state_dict())
    stages = [(e.from_stage, e.to_stage) for e in events if isinstance(e, SeedLifecycle)]
    assert stages[-1] == ("PROBATIONARY", "FOSSILIZED")
    assert len(stages) == 6


def test_auto_advance_with_real_thresholds_and_alpha_schedule():
    model = build_model(thresholds=GateThresholds(g2_min_epochs=1, g2_gradient_ratio=0.0))
    x, _ = toy_data(1)[0]
    model.germinate("p0", linear_blueprint(), epoch=1)
    model(x)
    assert model.step_lifecycle(epoch=1) == [("p0", S.GERMINATED, S.TRAINING)]
    slot = model.slot("p0")
    model.record_validation(contributions={}, seed_gains={"p0": 0.5}, epoch=2)
    assert model.step_lifecycle(epoch=2) == [("p0", S.TRAINING, S.BLENDING)]
    alphas = [slot.alpha]
    epoch = 3
    while slot.stage is S.BLENDING:
        model.step_lifecycle(epoch=epoch)
        alphas.append(slot.alpha)
        epoch += 1
    assert alphas == sorted(alphas) and alphas[0] == pytest.approx(model.schedule(1))
    assert slot.stage is S.SHADOWING and alphas[-1] >= 0.95
    # With no contribution recorded G4 refuses, and nothing auto-fossilizes.
    for e in range(epoch, epoch + 3):
        model.step_lifecycle(epoch=e)
    assert slot.stage is S.SHADOWING


def test_cull_then_embargo_resetting_dormant_timing():
    model = build_model(lifecycle=LifecycleSettings(embargo_epochs=3, resetting_epochs=2))
    set_stage(model, "p0", S.TRAINING, epoch=1)
    model.cull("p0", epoch=4, reason="controller")
    slot = model.slot("p0")
    assert slot.stage is S.CULLED and slot.seed is None
    assert model.step_lifecycle(epoch=4) == [("p0", S.CULLED, S.EMBARGOED)]
    seen = {}
    for e in range(5, 12):
        model.step_lifecycle(epoch=e)
        seen[e] = slot.stage
    assert seen == {5: S.EMBARGOED, 6: S.EMBARGOED, 7: S.RESETTING, 8: S.RESETTING,
                    9: S.DORMANT, 10: S.DORMANT, 11: S.DORMANT}
    assert slot.blueprint is None and slot.state.germinated_epoch is None
    assert model.germinate("p0", linear_blueprint(), epoch=12).passed


def test_zero_dwell_cooldown_passes_straight_through():
    model = build_model(lifecycle=LifecycleSettings(embargo_epochs=0, resetting_epochs=0))
    set_stage(model, "p0", S.GERMINATED)
    model.cull("p0", epoch=1, reason="x")
    assert [t[2] for t in model.step_lifecycle(epoch=1)] == [S.EMBARGOED, S.RESETTING, S.DORMANT]


def test_preview_gates_decides_as_the_gate_would_and_changes_nothing(events):
    model = build_model(TinyHost(3), lifecycle=LifecycleSettings(auto_advance=False), events=events)
    set_stage(model, "p0", S.PROBATIONARY)
    set_stage(model, "p1", S.GERMINATED)
    events.clear()
    model.record_validation(contributions={"p0": 0.3}, seed_gains={}, epoch=1, contribution_ses={"p0": 0.5})

    p0, p1, p2 = model.preview_gates(epoch=1, advance=True)
    # 0.3 − 1.645 × 0.5 < 0: G5 would refuse, and says why; p1 → TRAINING needs a probe (G1),
    # which the seed has not seen yet; p2 is DORMANT, which no gate guards.
    assert p0 is not None and not p0.passed and p0.target is S.FOSSILIZED and "lower bound" in p0.reason
    assert p1 is not None and p1.target is S.TRAINING
    assert p2 is None
    assert model.preview_gates(epoch=1, advance=False)[1] is None  # auto-advance: only G5 is asked
    assert events == [] and model.slot("p0").stage is S.PROBATIONARY  # nothing reported or moved

    model.record_validation(contributions={"p0": 3.0}, seed_gains={}, epoch=2, contribution_ses={"p0": 0.5})
    preview = model.preview_gates(epoch=2, advance=False)[0]
    assert preview is not None and preview.passed
    # The gate, asked for real on the same state, decides the same.
    assert model.fossilize("p0", epoch=2).passed == preview.passed


def test_preview_gates_refuses_what_another_rank_refuses(monkeypatch):
    import esper_core.kasmina.model as model_module

    model = build_model(TinyHost(3))
    set_stage(model, "p0", S.PROBATIONARY)
    set_stage(model, "p1", S.PROBATIONARY)
    model.record_validation(contributions={"p0": 3.0, "p1": 3.0}, seed_gains={}, epoch=1,
                            contribution_ses={"p0": 0.5, "p1": 0.5})
    asked = []

    def other_rank_refuses_p1(flags):
        asked.append(list(flags))
        return [flags[0], False, flags[2]]

    monkeypatch.setattr(model_module, "agree_all", other_rank_refuses_p1)
    p0, p1, p2 = model.preview_gates(epoch=1, advance=False)
    assert asked == [[True, True, False]]  # one collective for every slot's verdict
    assert p0.passed and p2 is None
    assert not p1.passed and p1.reason.endswith("; refused on another rank")


def test_probation_timeout_culls():
    model = build_model(lifecycle=LifecycleSettings(probation_epochs=5))
    set_stage(model, "p0", S.PROBATIONARY, epoch=10)
    for e in range(11, 15):
        model.step_lifecycle(epoch=e)
    assert model.slot("p0").stage is S.PROBATIONARY
    transitions = model.step_lifecycle(epoch=15)
    assert transitions[0] == ("p0", S.PROBATIONARY, S.CULLED)
    assert model.slot("p0").stage is S.EMBARGOED


def test_dwell_counts_once_per_epoch():
    model = build_model(lifecycle=LifecycleSettings(auto_advance=False))
    set_stage(model, "p0", S.TRAINING, epoch=1)
    model.step_lifecycle(epoch=1)
    model.step_lifecycle(epoch=2)
    model.step_lifecycle(epoch=2)
    assert model.slot("p0").state.epochs_in_stage == 1


def test_host_and_seed_parameter_access():
    model = build_model()
    assert model.seed_parameters("p0") == []
    set_stage(model, "p0", S.BLENDING)
    assert len(model.seed_parameters("p0")) == 2
    assert "stage=BLENDING" in repr(model.slot("p0"))
    assert isinstance(model, MorphogeneticModel)
