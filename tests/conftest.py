"""Shared fixtures, the repository root and the solo-learn skip marker (tests/<layer>/ import
them with ``from conftest import ...``)."""
import importlib.util
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]  # the repository root; tests live in tests/<layer>/
HAS_SOLO = importlib.util.find_spec("solo") is not None
needs_solo = pytest.mark.skipif(
    not HAS_SOLO,
    reason="solo-learn is not installed (pip install 'solo-semppl[solo]', see README)",
)


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)
    yield
