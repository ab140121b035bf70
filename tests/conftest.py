"""Shared fixtures and the solo-learn skip marker."""
import importlib.util

import pytest
import torch

HAS_SOLO = importlib.util.find_spec("solo") is not None
needs_solo = pytest.mark.skipif(
    not HAS_SOLO,
    reason="solo-learn is not installed (pip install 'solo-semppl[solo]', see README)",
)


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)
    yield
