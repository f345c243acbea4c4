"""Fixtures for the Kasmina tests; helpers live in ``kasmina_helpers`` next to this file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

# importlib import mode puts no test folder on sys.path; make the helper module importable.
sys.path.insert(0, str(Path(__file__).parent))

# The test models are tiny: intra-op threads only add synchronisation, and on a shared, busy
# machine spinning OpenMP workers make each small op a thousand times slower.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def events() -> list[Any]:
    return []
