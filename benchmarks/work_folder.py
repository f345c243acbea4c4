"""A benchmark's ``--work`` folder: finished steps kept for reuse, under the settings that made them.

Benchmarks that take hours keep every finished step (a training run, an evaluation, a search) in
a work folder, so an interrupted study resumes and a longer one extends a shorter one. A kept
step is only worth reusing under the settings that made it: reused under others, it would be
reported beside results it does not belong with, and nothing in the output would show it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The record, in a ``--work`` folder, of the settings its kept steps were made with.
SETTINGS_FILE = "settings.json"


def claim_work(folder: Path, settings: dict[str, Any]) -> None:
    """Keep steps in ``folder`` only under ``settings``: the first use records them, and a later
    invocation with other settings is refused, naming each difference, before anything runs.
    Without it a step kept from one invocation would be reported beside results of another's
    settings. A folder that already holds files but no record is refused too."""
    wanted = json.loads(json.dumps(settings))  # as the record reads back (tuples become lists)
    record = folder / SETTINGS_FILE
    if record.is_file():
        saved = json.loads(record.read_text())
        differ = [f"{k}: {saved.get(k)!r} there, {wanted.get(k)!r} now"
                  for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)]
        if differ:
            raise SystemExit(f"{folder} keeps steps made with other settings ({'; '.join(differ)}): "
                             "give the same settings, or another work folder")
        return
    if folder.is_dir() and any(folder.iterdir()):
        raise SystemExit(f"{folder} holds files but no {SETTINGS_FILE} saying what settings made them: "
                         "use another work folder")
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(wanted, indent=1, sort_keys=True))
