"""Fixtures for the geometry tests."""

from __future__ import annotations

import numpy as np
import pytest
from _geometry_helpers import DATA, blob, load_real_rles


@pytest.fixture(scope="session")
def real_rles() -> list[dict]:
    """The 759 real COCO masks (see ``load_real_rles``)."""
    if not DATA.exists():
        pytest.skip(f"shared COCO samples not found at {DATA}")
    return load_real_rles()


@pytest.fixture
def asym_mask() -> np.ndarray:
    return blob()
