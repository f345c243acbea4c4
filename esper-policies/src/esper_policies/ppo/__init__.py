"""PPO Tamiyo: a learned controller trained with proximal policy optimisation.

Map of the package: :mod:`.config` (options), :mod:`.network` (the factored, masked
actor-critic), :mod:`.normalize` (running statistics), :mod:`.gae` and :mod:`.group`
(advantages), :mod:`.update` (the clipped-surrogate update), :mod:`.trainer` (rounds of rollouts
on vectorised environments inside ``esper run``). Shared with the offline learner: :mod:`esper_policies.encoding`
(observations, masks and decisions as tensors), :mod:`esper_policies.checkpoint` (saving and
restoring) and :mod:`esper_policies.checkpoint_policy` (a trained controller acting in a run).
"""
