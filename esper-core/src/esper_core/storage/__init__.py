"""Storage: what a run writes and reads back — its directory, checkpoints and exported models.

Every file Esper reads is checked before use and never runs code (see ``docs/security.md``).
"""
