"""``esper report``: figures and a self-contained HTML page for one run directory.

:mod:`.history` extracts what to plot from the recorded events (no matplotlib);
:mod:`.figures` draws the PNGs; :mod:`.page` writes the HTML; :mod:`.build` ties them together.
"""
