"""The Architect: a learned blueprint generator (DESIGN §6, §9).

:mod:`.model` holds the token decoder (GRU or a small causal transformer), :mod:`.generator`
the generator that ``esper discover --generator architect`` runs: supervised pre-training on the
catalog's token forms, then REINFORCE from the Crucible's scores with a task curriculum.
"""
