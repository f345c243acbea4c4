"""The pluggy markers. Plugins import ``hookimpl`` from here (or from ``esper_core``)."""

import pluggy

PROJECT_NAME = "esper"
ENTRY_POINT_GROUP = "esper"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
