"""Text tasks for the GPT host: an embedded corpus (``pytext``) and any text file (``textfile``).

Torch-free at import; the task objects live in :mod:`.text`.
"""
