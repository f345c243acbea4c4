"""IQL Tamiyo: a controller learned offline from recorded episodes with implicit Q-learning.

:mod:`.config` (options), :mod:`.update` (the three losses, the Q network and the target
update), :mod:`.trainer` (training inside ``esper run --policy iql --dataset DIR``). The actor is
the same masked, factored actor-critic PPO uses (:mod:`esper_policies.ppo.network`; its value
head is IQL's V), so a trained IQL policy acts and is evaluated like a PPO one.
"""
