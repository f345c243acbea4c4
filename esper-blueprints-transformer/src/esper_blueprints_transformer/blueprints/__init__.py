"""Transformer seed blueprints: modules mapping (B, T, d) to (B, T, d).

Every factory is keyword-only, ``fn(*, width)``; the catalog entries live in
:mod:`esper_blueprints_transformer.plugin`, their parameter counts in
:mod:`esper_blueprints_transformer.params`.
"""
