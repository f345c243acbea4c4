"""Make the shared builders in ``policy_testkit.py`` importable (tests have no __init__.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
