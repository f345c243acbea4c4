import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esper_core.contracts import (
    OBSERVATION_SCHEMA_VERSION,
    ActionMask,
    BlueprintSpec,
    Decision,
    EpochEnded,
    GateResult,
    ObservationLayout,
    Op,
    SeedStage,
    TrainingSignals,
    event_from_record,
)
from esper_core.lazy import lazy
from esper_core.testing import sample_event_stream, sample_reports


def test_decision_shape_rules():
    Decision(op=Op.GERMINATE, slot=0, blueprint="cnn:norm", reason="r")
    with pytest.raises(ValueError, match="WAIT decision takes no slot"):
        Decision(op=Op.WAIT, slot=0)
    with pytest.raises(ValueError, match="needs a slot"):
        Decision(op=Op.CULL)
    with pytest.raises(ValueError, match="exactly when the op is GERMINATE"):
        Decision(op=Op.CULL, slot=1, blueprint="cnn:norm")
    with pytest.raises(ValueError, match="confidence"):
        Decision(op=Op.WAIT, confidence=1.5)


masks = st.integers(1, 4).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=5, max_size=5),
    st.lists(st.booleans(), min_size=3, max_size=3),
))


@given(masks)
def test_valid_decisions_are_exactly_the_allowed_ones(data):
    rows, bps = data
    mask = ActionMask(slots=rows, blueprints=bps, blueprint_keys=("t:a", "t:b", "t:c"))
    valid = list(mask.valid_decisions())
    assert all(mask.allows(d) for d in valid)
    n = mask.n_slots
    expected = 1 + sum(
        (sum(bps) if op is Op.GERMINATE else 1) * sum(rows[op]) for op in Op if op is not Op.WAIT
    )
    assert len(valid) == expected
    assert mask.ops[Op.WAIT]
    for op in Op:
        if op is not Op.WAIT:
            assert mask.ops[op] == any(rows[op])
    assert not mask.allows(Decision(op=Op.CULL, slot=n, reason="out of range"))
    assert not mask.allows(Decision(op=Op.GERMINATE, slot=0, blueprint="t:zzz", reason="unknown"))


def test_mask_shape_validation():
    with pytest.raises(ValueError, match="one row per op"):
        ActionMask(slots=[[True]], blueprints=[], blueprint_keys=[])
    with pytest.raises(ValueError, match="same length"):
        ActionMask(slots=[[True]] * 5, blueprints=[True], blueprint_keys=[])


def test_blueprint_spec_validation():
    ok = dict(name="conv", topology="cnn", factory=dict, param_estimate=lambda w: w, description="d")
    assert BlueprintSpec(**ok).key == "cnn:conv"
    with pytest.raises(ValueError, match="lower-case name"):
        BlueprintSpec(**{**ok, "name": "Conv Light"})
    with pytest.raises(ValueError, match="0..33"):
        BlueprintSpec(**ok, action_index=40)
    with pytest.raises(TypeError, match="callable"):
        BlueprintSpec(**{**ok, "factory": 3})


def test_gate_result_combine():
    a = GateResult(gate="a", target=SeedStage.BLENDING, passed=True, reason="ok a", measurements={"x": 1.0})
    b = GateResult(gate="b", target=SeedStage.BLENDING, passed=False, reason="too small", measurements={"y": 2.0})
    combined = GateResult.combine(SeedStage.BLENDING, [a, b])
    assert not combined.passed and combined.reason == "too small"
    assert combined.measurements == {"a.x": 1.0, "b.y": 2.0}
    assert GateResult.combine(SeedStage.BLENDING, [a]).passed


def _signals(report):
    return TrainingSignals(report=report, best_accuracy=report.val_accuracy, accuracy_delta=1.0,
                           loss_delta=-0.1, smoothed_delta=0.5, plateau_epochs=2, epochs_since_cull=99,
                           accuracy_history=(10.0, 20.0), loss_history=(1.0,))


def test_observation_layout_is_documented_and_bounded():
    reports = sample_reports(n_slots=3, epochs=4)
    layout = ObservationLayout(n_slots=3)
    features = layout.features()
    assert [f.index for f in features] == list(range(layout.size))
    assert len({f.name for f in features}) == layout.size
    assert layout.version == OBSERVATION_SCHEMA_VERSION
    vector = layout.build(_signals(reports[-1]))
    assert len(vector) == layout.size and all(-5 <= v <= 5 for v in vector)
    index = {f.name: f.index for f in features}
    assert vector[index["val_accuracy"]] == pytest.approx(reports[-1].val_accuracy / 100)
    assert vector[index["accuracy_hist_4"]] == pytest.approx(0.2)  # newest value last
    assert vector[index["accuracy_hist_0"]] == 0.0  # left padding
    stage = reports[-1].slots[2].stage.name.lower()
    assert vector[index[f"slot2.stage_{stage}"]] == 1.0
    batch = layout.build_batch([_signals(r) for r in reports])
    assert tuple(batch.shape) == (4, layout.size)
    with pytest.raises(ValueError, match="3 slots"):
        ObservationLayout(n_slots=3).build(_signals(sample_reports(n_slots=2)[0]))


def test_events_round_trip_through_json():
    for event in sample_event_stream():
        record = json.loads(json.dumps(event.to_record()))
        assert event_from_record(record) == event
    with pytest.raises(ValueError, match="schema version"):
        event_from_record({"kind": "epoch", "schema_version": 99})
    with pytest.raises(ValueError, match="unknown telemetry event kind"):
        event_from_record({"kind": "nope", "schema_version": 1})
    assert EpochEnded.kind == "epoch"


def test_lazy_reference_imports_on_call():
    ref = lazy("math:sqrt")
    assert ref(16.0) == 4.0 and ref.resolve() is math.sqrt
    assert "math:sqrt" in repr(ref)
    with pytest.raises(ValueError, match="package.module:attr"):
        lazy("math.sqrt")
