"""Set-up: everything a run needs, looked up and validated before any training starts.

The run configuration resolved against the installed catalog, seeding and device choice, and
the task, model and policy built for an episode.
"""
