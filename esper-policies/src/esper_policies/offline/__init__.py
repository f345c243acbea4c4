"""Offline learning: recorded episode datasets (:mod:`.dataset`) and ``esper collect``
(:mod:`.collect`, :mod:`.commands`)."""
