"""Discrete BCQ's rule for acting with IQL: the critic's best action among those the actor gives at
least τ times the probability of its most probable one, never a masked action."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from esper_core.contracts.decisions import ActionMask, Op
from esper_policies.encoding import encode_masks
from esper_policies.iql.extraction import allowed_actions, q_filtered_action
from esper_policies.ppo.network import ActorCritic

KEYS = ("a", "b", "c")
N_SLOTS = 2
OBS = 5


def _mask(slots=None, blueprints=(True, False, True)):
    slots = slots or [[True, True], [True, False], [False, True], [True, True], [False, False]][:len(Op)]
    rows = [list(r) for r in slots] + [[False, False]] * (len(Op) - len(slots))
    return encode_masks([ActionMask(slots=rows, blueprints=blueprints, blueprint_keys=KEYS)])


class TableCritic(nn.Module):
    """Q(s, a) read from a table keyed by the action: the test decides what the critic believes."""

    def __init__(self, table: dict[tuple[int, int, int], float], twin_offset: float = 0.0) -> None:
        super().__init__()
        self.table, self.twin_offset = table, twin_offset

    def forward(self, obs, actions):
        q = torch.tensor([self.table.get(tuple(a), -1.0) for a in actions.tolist()])
        return q, q + self.twin_offset


def _actor(op_logits: dict[Op, float]) -> ActorCritic:
    actor = ActorCritic(OBS, N_SLOTS, len(KEYS), hidden=8)
    with torch.no_grad():
        for head in (actor.op_head, actor.slot_head, actor.blueprint_head):
            head.weight.zero_()
            head.bias.zero_()
        for op, logit in op_logits.items():
            actor.op_head.bias[op] = logit
    return actor.eval()


def _joint_probabilities(actor, masks, candidates):
    obs = torch.zeros(1, OBS)
    features, _ = actor.features(obs)
    k = candidates.shape[0]
    out = actor.heads(features.expand(k, -1), masks.index(torch.zeros(k, dtype=torch.long)), candidates)
    return {tuple(a): p for a, p in zip(candidates.tolist(), out.log_prob.exp().tolist(), strict=True)}


def test_allowed_actions_are_exactly_the_joint_actions_the_mask_allows():
    masks = _mask()
    got = {tuple(a) for a in allowed_actions(masks).tolist()}
    expected = {(int(Op.WAIT), 0, 0)}
    for op in Op:
        if op is Op.WAIT or not bool(masks.ops[0, op]):
            continue
        for slot in range(N_SLOTS):
            if bool(masks.slots[0, op, slot]):
                expected |= ({(int(op), slot, b) for b in (0, 2)} if op is Op.GERMINATE else {(int(op), slot, 0)})
    assert got == expected and len(got) == allowed_actions(masks).shape[0]
    # GERMINATE with no allowed blueprint is not an action
    assert all(a[0] != Op.GERMINATE for a in allowed_actions(_mask(blueprints=(False, False, False))).tolist())


@pytest.mark.parametrize("threshold", [1.0, 0.5, 0.2, 0.05, 1e-6])
def test_the_critic_chooses_only_among_actions_the_actor_supports(threshold):
    # WAIT is the actor's favourite; the critic ranks the actions in the opposite order of the
    # actor's probabilities, so the choice is the least probable action still inside τ.
    actor = _actor({Op.WAIT: 2.0, Op.GERMINATE: 1.0})
    masks = _mask()
    candidates = allowed_actions(masks)
    probabilities = _joint_probabilities(actor, masks, candidates)
    critic = TableCritic({a: -p for a, p in probabilities.items()}, twin_offset=0.5)
    obs = torch.zeros(1, OBS)
    features, _ = actor.features(obs)
    action, probability, q = q_filtered_action(actor, critic, obs, features, masks, threshold=threshold)
    chosen = tuple(action[0].tolist())
    top = max(probabilities.values())
    supported = {a: p for a, p in probabilities.items() if p >= top * threshold * (1 - 1e-6)}
    assert chosen == min(supported, key=supported.get)
    assert math.isclose(float(probability), probabilities[chosen], rel_tol=1e-5)
    assert math.isclose(float(q), -probabilities[chosen], rel_tol=1e-5)  # the smaller twin
    if threshold == 1.0:
        assert chosen == (int(Op.WAIT), 0, 0)
    if threshold == 1e-6:
        assert chosen[0] != Op.WAIT  # every allowed action is supported: the critic's favourite wins


def test_a_masked_action_is_never_chosen_whatever_the_critic_says():
    actor = _actor({})
    masks = _mask(blueprints=(False, True, False))
    critic = TableCritic({(int(Op.GERMINATE), 0, 0): 100.0, (int(Op.GERMINATE), 0, 1): 1.0})
    obs = torch.zeros(1, OBS)
    features, _ = actor.features(obs)
    action, _, _ = q_filtered_action(actor, critic, obs, features, masks, threshold=1e-3)
    assert tuple(action[0].tolist()) == (int(Op.GERMINATE), 0, 1)


def test_a_threshold_outside_zero_to_one_is_refused():
    actor = _actor({})
    obs = torch.zeros(1, OBS)
    features, _ = actor.features(obs)
    for threshold in (0.0, 1.5):
        with pytest.raises(ValueError, match="threshold must be in"):
            q_filtered_action(actor, TableCritic({}), obs, features, _mask(), threshold=threshold)
