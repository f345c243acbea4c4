"""PPO's pieces: GAE, masks, the network, normalisers and the update."""

from __future__ import annotations

import attrs
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from esper_core.contracts.decisions import ActionMask, Op
from esper_core.contracts.observation import ObservationLayout
from esper_core.errors import ConfigError
from esper_core.options import parse_options
from esper_policies.encoding import MaskBatch, encode_masks, to_decisions
from esper_policies.ppo.config import PPOConfig
from esper_policies.ppo.gae import compute_gae
from esper_policies.ppo.group import group_advantages
from esper_policies.ppo.network import SLOT_HEADS, ActorCritic
from esper_policies.ppo.normalize import ReturnScaler, RunningMeanStd
from esper_policies.ppo.update import Rollout, anchor_kl, explained_variance, ppo_update

KEYS = ("a", "b", "c")


def test_gae_matches_a_hand_computed_example():
    # One environment, three steps, γ = 0.9, λ = 0.8, ending in a terminal state.
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.5], [1.0], [1.5]])
    next_values = torch.tensor([[1.0], [1.5], [9.0]])  # 9.0 must be ignored: terminal
    terminated = torch.tensor([[False], [False], [True]])
    truncated = torch.zeros(3, 1, dtype=torch.bool)
    adv, ret = compute_gae(rewards, values, next_values, terminated, truncated, gamma=0.9, lam=0.8)
    d2 = 2.0 - 1.5                      # 0.5
    d1 = 0.0 + 0.9 * 1.5 - 1.0          # 0.35
    d0 = 1.0 + 0.9 * 1.0 - 0.5          # 1.4
    a2 = d2
    a1 = d1 + 0.72 * a2                 # 0.71
    a0 = d0 + 0.72 * a1                 # 1.9112
    assert adv.squeeze(1).tolist() == pytest.approx([a0, a1, a2])
    assert ret.squeeze(1).tolist() == pytest.approx([a0 + 0.5, a1 + 1.0, a2 + 1.5])


def test_gae_bootstraps_truncation_but_does_not_carry_across_episodes():
    rewards = torch.tensor([[1.0], [1.0]])
    values = torch.tensor([[0.0], [0.0]])
    next_values = torch.tensor([[0.0], [10.0]])
    truncated = torch.tensor([[True], [True]])  # two one-step episodes, both cut at a time limit
    terminated = torch.zeros(2, 1, dtype=torch.bool)
    adv, _ = compute_gae(rewards, values, next_values, terminated, truncated, gamma=0.5, lam=1.0)
    assert adv.squeeze(1).tolist() == pytest.approx([1.0, 1.0 + 0.5 * 10.0])
    adv_terminal, _ = compute_gae(rewards, values, next_values, truncated, torch.zeros_like(truncated),
                                  gamma=0.5, lam=1.0)
    assert adv_terminal.squeeze(1).tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="share one"):
        compute_gae(rewards, values[:1], next_values, terminated, truncated, gamma=0.5, lam=1.0)


masks_strategy = st.integers(1, 3).flatmap(lambda n_slots: st.builds(
    lambda rows, bps: ActionMask(slots=rows, blueprints=bps, blueprint_keys=KEYS),
    st.lists(st.lists(st.booleans(), min_size=n_slots, max_size=n_slots), min_size=len(Op), max_size=len(Op)),
    st.lists(st.booleans(), min_size=3, max_size=3),
))


@settings(max_examples=60, deadline=None)
@given(st.lists(masks_strategy, min_size=1, max_size=4).filter(lambda ms: len({m.n_slots for m in ms}) == 1),
       st.integers(0, 2**16), st.sampled_from(["mlp", "lstm"]), st.booleans(), st.sampled_from(SLOT_HEADS))
def test_sampled_and_greedy_actions_are_always_allowed(masks, seed, trunk, greedy, slot_head):
    torch.manual_seed(seed)
    n_slots = masks[0].n_slots
    obs_size = ObservationLayout(n_slots).size  # the shared slot head reads the layout's slot blocks
    net = ActorCritic(obs_size, n_slots, len(KEYS), trunk=trunk, hidden=8, slot_head=slot_head)
    with torch.no_grad():  # large random weights: a peaked policy that would pick masked actions
        for p in net.parameters():
            p.normal_(0, 3)
    features, _ = net.features(torch.randn(len(masks), obs_size))
    out = net.heads(features, encode_masks(masks), greedy=greedy, generator=torch.Generator().manual_seed(seed))
    decisions = to_decisions(out.actions, out.log_prob.exp(), out.value, KEYS, how="test")
    for mask, decision in zip(masks, decisions, strict=True):
        assert mask.allows(decision), (mask, decision)
    assert torch.isfinite(out.log_prob).all() and torch.isfinite(out.entropy).all()
    rescored = net.heads(features, encode_masks(masks), out.actions)
    assert torch.allclose(rescored.log_prob, out.log_prob)


def test_encode_masks_counts_germinate_only_with_an_allowed_blueprint():
    rows = [[False, False]] * len(Op)
    rows[Op.GERMINATE] = [True, False]
    batch = encode_masks([ActionMask(slots=rows, blueprints=[False] * 3, blueprint_keys=KEYS)])
    assert batch.ops.tolist() == [[True, False, False, False, False]]


@pytest.mark.parametrize("trunk", ["mlp", "lstm"])
def test_initial_wait_logit_sets_the_starting_probability_of_wait(trunk):
    """WAIT starts at e^b / (e^b + K) with K other allowed ops; b = 0 is the uniform start."""
    rows = [[False, False] for _ in Op]
    rows[Op.WAIT] = [True, True]
    rows[Op.GERMINATE] = [True, False]
    rows[Op.CULL] = [False, True]
    masks = encode_masks([ActionMask(slots=rows, blueprints=[True] * 3, blueprint_keys=KEYS)])
    for b, expected in ((0.0, 1 / 3), (2.5, 12.1825 / (12.1825 + 2))):
        torch.manual_seed(0)
        net = ActorCritic(5, 2, 3, trunk=trunk, hidden=8, initial_wait_logit=b)
        features, _ = net.features(torch.randn(1, 5))
        wait = torch.zeros(1, 3, dtype=torch.long)  # op WAIT; slot and blueprint do not count for WAIT
        out = net.heads(features, masks, wait)
        assert float(out.log_prob.exp()) == pytest.approx(expected, abs=0.01)


def test_initial_wait_logit_is_validated():
    with pytest.raises(ValueError, match="initial_wait_logit"):
        PPOConfig(initial_wait_logit=50.0)


def test_lstm_sequences_match_step_by_step_features():
    torch.manual_seed(0)
    net = ActorCritic(5, 2, 3, trunk="lstm", hidden=8)
    obs = torch.randn(4, 3, 5)
    seq, _ = net.features(obs)
    state = net.initial_state(3)
    steps = []
    for t in range(4):
        f, state = net.features(obs[t], state)
        steps.append(f)
    assert torch.allclose(seq, torch.stack(steps), atol=1e-6)
    assert ActorCritic(5, 2, 3).initial_state(3) is None
    with pytest.raises(ValueError, match="trunk"):
        ActorCritic(5, 2, 3, trunk="gru")


def _slot_choice_data(n: int, n_slots: int, generator: torch.Generator) -> tuple[torch.Tensor, MaskBatch, torch.Tensor]:
    """Random observations where FOSSILIZE is offered in two random slots, and the slot chosen is
    the one whose ``contribution`` feature is larger: the heuristic's rule."""
    layout = ObservationLayout(n_slots)
    obs = torch.randn(n, layout.size, generator=generator)
    contribution = next(f.index for f in layout.slot_features if f.name == "contribution")
    start, width = len(layout.global_features), len(layout.slot_features)
    ops = torch.zeros(n, len(Op), dtype=torch.bool)
    ops[:, Op.WAIT] = ops[:, Op.FOSSILIZE] = True
    slots = torch.zeros(n, len(Op), n_slots, dtype=torch.bool)
    actions = torch.zeros(n, 3, dtype=torch.long)
    actions[:, 0] = Op.FOSSILIZE
    for i in range(n):
        pair = torch.randperm(n_slots, generator=generator)[:2]
        slots[i, Op.FOSSILIZE, pair] = True
        slots[i, Op.WAIT] = True
        values = obs[i, start + pair * width + contribution]
        actions[i, 1] = pair[int(values.argmax())]
    return obs, MaskBatch(ops, slots, torch.ones(n, len(KEYS), dtype=torch.bool)), actions


def _cloned_slot_accuracy(slot_head: str) -> float:
    n_slots = 4
    obs, masks, actions = _slot_choice_data(192, n_slots, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = ActorCritic(ObservationLayout(n_slots).size, n_slots, len(KEYS), hidden=16, slot_head=slot_head)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        features, _ = net.features(obs)
        loss = -net.heads(features, masks, actions).factor_log_prob[:, 1].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    obs, masks, actions = _slot_choice_data(400, n_slots, torch.Generator().manual_seed(1))
    with torch.no_grad():
        features, _ = net.features(obs)
        chosen = net.heads(features, masks, actions).head_log_probs[1].argmax(dim=1)
    return float((chosen == actions[:, 1]).float().mean())


def test_the_shared_slot_head_learns_a_rule_over_slots_that_the_linear_head_does_not():
    """192 cloned choices of "the larger contribution first", two of 4 slots offered each time
    (about 32 per pair), every other feature noise. The shared scorer needs one weight, the same
    for every slot, and picks the rule's slot on 400 fresh states (0.93 when this was written);
    the linear head must learn each pair apart and stays near chance (0.63)."""
    shared, linear = _cloned_slot_accuracy("shared"), _cloned_slot_accuracy("linear")
    assert shared >= 0.8 and shared >= linear + 0.15, (shared, linear)


def test_the_shared_slot_head_scores_each_slot_with_the_same_weights():
    torch.manual_seed(0)
    layout = ObservationLayout(3)
    net = ActorCritic(layout.size, 3, len(KEYS), hidden=8, slot_head="shared")
    obs = torch.randn(2, layout.size)
    features, _ = net.features(obs)
    assert features.shape == (2, 8 + 3 * len(layout.slot_features))
    start, width = len(layout.global_features), len(layout.slot_features)
    trunk = net.trunk(obs)
    masks = MaskBatch(torch.ones(2, len(Op), dtype=torch.bool), torch.ones(2, len(Op), 3, dtype=torch.bool),
                      torch.ones(2, len(KEYS), dtype=torch.bool))
    logp = net.heads(features, masks, torch.tensor([[Op.CULL, 0, 0]] * 2)).head_log_probs[1]
    by_hand = torch.stack([net.slot_head(torch.cat([trunk, obs[:, start + k * width:start + (k + 1) * width],
                                                    torch.eye(3)[k].expand(2, 3)], dim=1))[:, Op.CULL]
                           for k in range(3)], dim=1)
    assert torch.allclose(logp, torch.log_softmax(by_hand, dim=1), atol=1e-6)
    assert torch.allclose(net.value(features), net.value_head(trunk).squeeze(-1))
    with pytest.raises(ValueError, match="obs_size must be"):
        ActorCritic(layout.size + 1, 3, len(KEYS), slot_head="shared")
    with pytest.raises(ValueError, match="slot_head must be one of linear, shared"):
        ActorCritic(layout.size, 3, len(KEYS), slot_head="pointer")


def test_running_mean_std_merges_batches_exactly():
    data = torch.randn(50, 3) * 4 + 2
    stats = RunningMeanStd((3,))
    for chunk in data.split([7, 20, 23]):
        stats.update(chunk)
    stats.update(torch.empty(0, 3))
    assert torch.allclose(stats.mean.float(), data.mean(0), atol=1e-3)
    assert torch.allclose(stats.var.float(), data.var(0, unbiased=False), atol=1e-2)
    normalized = stats.normalize(data)
    assert normalized.abs().max() <= 10 and abs(float(normalized.mean())) < 1e-2
    copy = RunningMeanStd((3,))
    copy.load_state_dict(stats.state_dict())
    assert torch.equal(copy.normalize(data), normalized)


def test_return_scaler_divides_by_the_std_of_discounted_returns():
    scaler = ReturnScaler(2, gamma=0.5)
    for _ in range(200):
        out = scaler.scale(torch.tensor([10.0, 10.0]))
    # the discounted return converges to 20, its variance to ~0; scaled rewards are clipped at 10
    assert out.tolist() == [10.0, 10.0]
    scaler.reset()
    assert scaler.returns.tolist() == [0.0, 0.0]
    other = ReturnScaler(2, gamma=0.5)
    other.load_state_dict(scaler.state_dict())
    assert other.stats.count == scaler.stats.count


def _rollout(net, t=6, n=4):
    torch.manual_seed(1)
    rows = [[True, True]] * len(Op)
    masks = MaskBatch.stack([encode_masks([ActionMask(slots=rows, blueprints=[True] * 3, blueprint_keys=KEYS)] * n)
                             for _ in range(t)])
    obs = torch.randn(t, n, 5)
    with torch.no_grad():
        features, _ = net.features(obs if net.lstm is not None else obs.flatten(0, 1))
        out = net.heads(features.flatten(0, 1) if net.lstm is not None else features, masks.flatten())
    advantages = torch.randn(t, n)
    values = out.value.view(t, n)
    return Rollout(obs=obs, masks=masks, actions=out.actions.view(t, n, 3), log_probs=out.log_prob.view(t, n),
                   values=values, advantages=advantages, returns=advantages + values)


@pytest.mark.parametrize("trunk", ["mlp", "lstm"])
def test_an_update_raises_the_probability_of_advantaged_actions(trunk):
    torch.manual_seed(0)
    net = ActorCritic(5, 2, 3, trunk=trunk, hidden=16)
    rollout = _rollout(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    config = PPOConfig(update_epochs=4, minibatches=2, target_kl=None)
    metrics = ppo_update(net, optimizer, rollout, config=config, entropy_coef=0.0, generator=torch.Generator())
    assert metrics["update_epochs_run"] == 4
    assert {"policy_loss", "value_loss", "entropy_op", "entropy_slot", "entropy_blueprint", "approx_kl",
            "clip_fraction", "explained_variance", "grad_norm"} <= set(metrics)
    with torch.no_grad():
        flat = rollout.obs if net.lstm is not None else rollout.obs.flatten(0, 1)
        features, _ = net.features(flat)
        new = net.heads(features.flatten(0, 1) if net.lstm is not None else features, rollout.masks.flatten(),
                        rollout.actions.flatten(0, 1))
    change = new.log_prob - rollout.log_probs.flatten()
    assert float((change * rollout.advantages.flatten()).sum()) > 0


@pytest.mark.parametrize(("heads", "moved"), [("op,slot,blueprint", {"op", "slot", "blueprint"}),
                                              ("blueprint", {"blueprint"})])
def test_the_entropy_bonus_moves_only_the_heads_it_names(heads, moved):
    # No advantage and no value loss: the entropy bonus is the only force, so a head it does not
    # name keeps its weights (the trunk is shared and moves either way).
    torch.manual_seed(0)
    net = ActorCritic(5, 2, 3, hidden=16)
    rollout = attrs.evolve(_rollout(net), advantages=torch.zeros(6, 4))
    before = {h: getattr(net, f"{h}_head").weight.detach().clone() for h in ("op", "slot", "blueprint")}
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    config = PPOConfig(update_epochs=2, minibatches=2, target_kl=None, value_coef=0.0, entropy_heads=heads)
    ppo_update(net, optimizer, rollout, config=config, entropy_coef=1.0, generator=torch.Generator())
    changed = {h for h, w in before.items() if not torch.equal(w, getattr(net, f"{h}_head").weight)}
    assert changed == moved


def test_entropy_heads_refuses_unknown_or_empty_factors():
    for value in ("", "op,colour", []):
        with pytest.raises(ValueError, match=r"entropy_heads = .* is invalid; expected a non-empty list of op, slot, "
                                             r"blueprint"):
            PPOConfig(entropy_heads=value)


def _heads(net, obs, masks, actions=None):
    with torch.no_grad():
        features, _ = net.features(obs)
        return net.heads(features, masks, actions)


def test_anchor_kl_is_the_kl_of_each_head_where_it_took_part():
    torch.manual_seed(0)
    reference, learner = ActorCritic(5, 2, 3, hidden=16), ActorCritic(5, 2, 3, hidden=16)
    for net in (reference, learner):  # sharper heads than the near-uniform start
        for head in (net.op_head, net.slot_head, net.blueprint_head):
            torch.nn.init.normal_(head.weight, std=1.0)
    # "c" is never allowed: a probability of 0 under both policies must add nothing, not NaN
    masks = encode_masks([ActionMask(slots=[[True, True]] * len(Op), blueprints=[True, True, False],
                                     blueprint_keys=KEYS)] * 64)
    obs = torch.randn(64, 5)
    ref = _heads(reference, obs, masks)
    out = _heads(learner, obs, masks, ref.actions)
    assert ref.applies[:, 0].all() and not ref.applies[:, 2].all() and ref.applies[:, 2].any()
    for head in range(3):
        p, q = ref.head_log_probs[head], out.head_log_probs[head]
        expected = torch.where(ref.applies[:, head],
                               torch.nansum(p.exp() * (p - q), -1), 0.0).mean()
        got = anchor_kl(out, ref.head_log_probs, [head])
        assert torch.isfinite(got) and float(got) > 0
        assert float(got) == pytest.approx(float(expected), rel=1e-5)
    together = anchor_kl(out, ref.head_log_probs, [0, 1, 2])
    assert float(together) == pytest.approx(sum(float(anchor_kl(out, ref.head_log_probs, [h])) for h in range(3)))
    assert float(anchor_kl(ref, ref.head_log_probs, [0, 1, 2])) == 0.0


@pytest.mark.parametrize("trunk", ["mlp", "lstm"])
def test_bc_anchor_pulls_the_heads_it_anchors_back_to_the_cloned_policy(trunk):
    # No advantage, no value loss, no entropy bonus: the anchor is the only force. It pulls the
    # perturbed op head back toward the cloned policy and leaves the unanchored blueprint head be.
    torch.manual_seed(0)
    net = ActorCritic(5, 2, 3, trunk=trunk, hidden=16)
    rollout = attrs.evolve(_rollout(net), advantages=torch.zeros(6, 4))
    obs = rollout.obs if net.lstm is not None else rollout.obs.flatten(0, 1)
    masks, actions = rollout.masks.flatten(), rollout.actions.flatten(0, 1)

    def rows(features):
        return net.heads(features.flatten(0, 1) if net.lstm is not None else features, masks, actions)

    with torch.no_grad():
        reference = rows(net.features(obs)[0])
        torch.nn.init.normal_(net.op_head.weight, std=3.0)
        drifted = anchor_kl(rows(net.features(obs)[0]), reference.head_log_probs, [0])
    shaped = tuple(r.view(6, 4, -1) for r in reference.head_log_probs)
    rollout = attrs.evolve(rollout, reference=shaped)
    blueprint_before = net.blueprint_head.weight.detach().clone()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    config = PPOConfig(update_epochs=10, minibatches=2, target_kl=None, value_coef=0.0, bc_dataset="data",
                       bc_heads="op", bc_anchor=1.0)
    metrics = ppo_update(net, optimizer, rollout, config=config, entropy_coef=0.0, generator=torch.Generator())
    with torch.no_grad():
        after = anchor_kl(rows(net.features(obs)[0]), reference.head_log_probs, [0])
    assert float(drifted) > 0.05 and float(after) < 0.5 * float(drifted)
    assert metrics["kl_to_cloned"] < float(drifted)
    assert torch.equal(net.blueprint_head.weight, blueprint_before)
    free = PPOConfig(update_epochs=1, minibatches=2, target_kl=None, bc_dataset="data")  # bc_anchor 0: no term
    assert "kl_to_cloned" not in ppo_update(net, optimizer, rollout, config=free, entropy_coef=0.0,
                                            generator=torch.Generator())


def test_bc_anchor_needs_a_dataset_to_clone_and_a_non_negative_weight():
    with pytest.raises(ConfigError, match=r"bc_anchor = 1\.0 .*needs bc_dataset"):
        PPOConfig(bc_anchor=1.0)
    with pytest.raises(ValueError, match="bc_anchor"):
        PPOConfig(bc_anchor=-1.0, bc_dataset="data")
    assert PPOConfig(bc_anchor=0.5, bc_dataset="data").bc_anchor == 0.5


def test_the_update_stops_early_on_a_large_kl():
    torch.manual_seed(0)
    net = ActorCritic(5, 2, 3, hidden=16)
    rollout = _rollout(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.5)
    config = PPOConfig(update_epochs=10, minibatches=2, target_kl=1e-6)
    metrics = ppo_update(net, optimizer, rollout, config=config, entropy_coef=0.01, generator=torch.Generator())
    assert metrics["update_epochs_run"] == 1


def test_explained_variance():
    target = torch.tensor([1.0, 2.0, 3.0])
    assert explained_variance(target, target) == 1.0
    assert explained_variance(torch.full((3,), 2.0), target) == pytest.approx(0.0)
    assert explained_variance(target, torch.ones(3)) != explained_variance(target, torch.ones(3))  # NaN


def test_config_schedules_and_validation():
    cfg = PPOConfig(rounds=5, lr=1e-3, entropy_coef=0.1, entropy_coef_final=0.0)
    assert cfg.lr_at(0) == 1e-3 and cfg.lr_at(4) == pytest.approx(2e-4)
    assert cfg.entropy_coef_at(0) == 0.1 and cfg.entropy_coef_at(4) == 0.0
    assert PPOConfig(anneal_lr=False).lr_at(10) == 3e-4
    with pytest.raises(ValueError, match="trunk"):
        PPOConfig(trunk="gru")
    with pytest.raises(ValueError, match="episode_length"):
        PPOConfig(episode_length=0)


def test_group_advantages_are_the_return_to_go_less_the_rest_of_the_group():
    to_go = torch.tensor([[1.0, 3.0, 8.0, 0.0, 10.0, 20.0],
                          [2.0, 2.0, 2.0, 4.0, 5.0, 9.0]])
    advantages = group_advantages(to_go, 3)
    # step 0, group 0: 1 − (3 + 8)/2 = −4.5; 3 − (1 + 8)/2 = −1.5; 8 − (1 + 3)/2 = 6
    assert advantages[0, :3].tolist() == [-4.5, -1.5, 6.0]
    assert advantages[1, :3].tolist() == [0.0, 0.0, 0.0]
    assert advantages[0, 3:].tolist() == [-15.0, 0.0, 15.0]
    assert advantages[1, 3:].tolist() == [-3.0, -1.5, 4.5]
    pairs = group_advantages(to_go, 2)
    assert pairs[0].tolist() == [-2.0, 2.0, 8.0, -8.0, -10.0, 10.0]


def test_group_advantages_cancel_what_a_group_shares():
    """What every member of a group shares at a step (its episode seed's luck) leaves the
    advantages unchanged, however large; what one member did is kept."""
    gen = torch.Generator().manual_seed(0)
    acted = (torch.rand(5, 8, generator=gen) < 0.5).float()
    own = 0.2 * acted + 0.01 * torch.randn(5, 8, generator=gen)
    shared = 50 * torch.randn(5, 2, 1, generator=gen).expand(5, 2, 4).reshape(5, 8)
    advantages = group_advantages(own + shared, 4)
    assert torch.allclose(advantages, group_advantages(own, 4), atol=1e-4)
    assert advantages.view(5, 2, 4).sum(-1).abs().max() < 1e-3  # zero-sum within each group
    assert float(advantages[acted == 1].mean()) > 0 > float(advantages[acted == 0].mean())


@pytest.mark.parametrize("group_size", [1, 3])
def test_group_advantages_refuse_a_group_size_that_does_not_divide_the_environments(group_size):
    with pytest.raises(ValueError, match="group_size must be at least 2 and divide the 4 environments"):
        group_advantages(torch.zeros(3, 4), group_size)
    with pytest.raises(ValueError, match=r"must be \(T, N\)"):
        group_advantages(torch.zeros(4), 2)


def test_group_config_pairs_environments_and_checks_the_group_size():
    cfg = PPOConfig(envs=8, advantage="group", group_size=4)
    assert [cfg.group_of(i) for i in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [PPOConfig(envs=8, group_size=4).group_of(i) for i in range(3)] == [0, 1, 2]  # gae: its own seed
    with pytest.raises(ConfigError, match="group_size = 3, which must divide envs = 8"):
        parse_options(PPOConfig, {"envs": 8, "advantage": "group", "group_size": 3}, owner="policy 'ppo'")
    with pytest.raises(ValueError, match="advantage"):
        PPOConfig(advantage="rloo")
