"""``esper new-plugin``: writing a ready-to-build third-party plugin distribution.

:mod:`~esper_core.scaffold.names` derives and checks the names (distribution, import package,
entry point, components), :mod:`~esper_core.scaffold.templates` holds the file templates and
:mod:`~esper_core.scaffold.render` assembles them for the chosen component kinds.
"""
