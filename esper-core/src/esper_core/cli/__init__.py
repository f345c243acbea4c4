"""The ``esper`` command line (click)."""
