import pytest
from policy_testkit import KEYS

from esper_policies.rotation import BlueprintRotation

A, B, C = KEYS


def test_round_robin_over_the_catalog_order():
    rot = BlueprintRotation(KEYS)
    assert [rot.pick(KEYS).key for _ in range(4)] == [A, B, C, A]


def test_only_allowed_blueprints_are_picked_and_rotation_continues_after_the_pick():
    rot = BlueprintRotation(KEYS)
    assert rot.pick([B, C]).key == B
    assert rot.pick(KEYS).key == C
    assert rot.pick([A, B]).key == A


def test_cull_penalty_adds_two_and_decays_half_per_epoch():
    rot = BlueprintRotation(KEYS)
    rot.advance_to(3)
    assert rot.penalise(A) == 2.0
    assert rot.penalise(A) == 4.0
    rot.advance_to(4)
    assert rot.penalty(A) == 2.0
    rot.advance_to(4)  # same epoch again: no second decay
    assert rot.penalty(A) == 2.0
    rot.advance_to(6)  # two epochs later: decayed twice
    assert rot.penalty(A) == pytest.approx(0.5)
    assert rot.penalties == {A: pytest.approx(0.5)}


def test_two_picks_in_one_epoch_decay_once():
    rot = BlueprintRotation(KEYS)
    rot.advance_to(1)
    rot.penalise(C)
    rot.advance_to(2)
    rot.pick(KEYS)
    rot.advance_to(2)
    rot.pick(KEYS)
    assert rot.penalties == {C: 1.0}


def test_blueprints_above_the_threshold_are_skipped():
    rot = BlueprintRotation(KEYS)
    rot.penalise(A)
    rot.penalise(A)  # 4.0 > 3
    rot.penalise(B)
    rot.penalise(B)
    pick = rot.pick(KEYS)
    assert (pick.key, pick.skipped, pick.fallback) == (C, (A, B), False)
    assert "skipped cnn:conv_light, cnn:attention (penalty > 3)" in pick.describe(3.0)


def test_a_penalty_equal_to_the_threshold_is_not_skipped():
    rot = BlueprintRotation(KEYS, penalty_on_cull=3.0)
    rot.penalise(A)
    assert rot.pick(KEYS).key == A


def test_fallback_to_the_least_penalised_when_all_are_above_the_threshold():
    rot = BlueprintRotation(KEYS)
    for key, culls in ((A, 3), (B, 2), (C, 2)):
        for _ in range(culls):
            rot.penalise(key)
    pick = rot.pick(KEYS)
    assert (pick.key, pick.penalty, pick.fallback) == (B, 4.0, True)  # tie B/C: rotation order
    assert "least penalised cnn:attention (penalty 4.00)" in pick.describe(3.0)
    assert rot.pick(KEYS).key == C  # rotation moved past B, and C ties with B


def test_empty_allowed_set_is_an_error_and_unknown_keys_join_the_rotation():
    rot = BlueprintRotation(KEYS)
    with pytest.raises(ValueError, match="no blueprint"):
        rot.pick([])
    assert rot.pick(["cnn:extra"]).key == "cnn:extra"
    assert rot.keys == (*KEYS, "cnn:extra")


def test_reset_clears_penalties_and_position():
    rot = BlueprintRotation(KEYS)
    rot.pick(KEYS)
    rot.penalise(B)
    rot.reset()
    assert rot.penalties == {} and rot.pick(KEYS).key == A


def test_preference_order_uses_a_blueprint_again_until_it_is_culled():
    r = BlueprintRotation(["a", "b", "c"], penalty_on_cull=4.0, decay=1.0, threshold=3.0, rotate=False)
    assert [r.pick(["a", "b", "c"]).key for _ in range(3)] == ["a", "a", "a"]
    r.penalise("a")
    assert r.pick(["a", "b", "c"]).key == "b"
    assert r.pick(["a", "c"]).key == "c"  # b not allowed this time
    rotating = BlueprintRotation(["a", "b", "c"])
    assert [rotating.pick(["a", "b", "c"]).key for _ in range(3)] == ["a", "b", "c"]


def test_without_rotation_a_preferred_key_heads_the_order_until_penalised():
    rot = BlueprintRotation(KEYS, rotate=False, penalty_on_cull=4.0, decay=1.0, threshold=3.0)
    assert rot.pick(KEYS).key == A
    rot.prefer(C)
    assert [rot.pick(KEYS).key for _ in range(2)] == [C, C]  # kept, not a one-off
    rot.prefer(B)
    assert rot.pick(KEYS).key == B  # the latest preference first
    assert rot.pick([A, C]).key == C  # then the earlier one, before the catalog order
    rot.penalise(B)
    assert rot.pick(KEYS).key == C  # a culled preference is skipped like any culled key


def test_preferences_survive_a_checkpoint_and_clear_on_reset():
    rot = BlueprintRotation(KEYS, rotate=False)
    rot.prefer(C)
    restored = BlueprintRotation(KEYS, rotate=False)
    restored.load_state_dict(rot.state_dict())
    assert restored.pick(KEYS).key == C
    old = {k: v for k, v in rot.state_dict().items() if k != "preferred"}  # written before preferences
    restored.load_state_dict(old)
    assert restored.pick(KEYS).key == A
    rot.reset()
    assert rot.pick(KEYS).key == A
