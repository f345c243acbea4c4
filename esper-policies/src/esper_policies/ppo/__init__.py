"""PPO Tamiyo: a learned controller trained with proximal policy optimisation.

Map of the package: :mod:`.config` (options), :mod:`.network` (the factored, masked
actor-critic), :mod:`.normalize`
(running statistics), :mod:`.gae` (advantages), :mod:`.update` (the clipped-surrogate update),
:mod:`.checkpoint` (saving and restoring), :mod:`.policy` (the trained controller in a run),
:mod:`.trainer` (rounds of rollouts on vectorised environments inside ``esper run``). Observations, masks and decisions as tensors are shared with the offline
learner: :mod:`esper_policies.encoding`.
"""
