"""Shared pytest fixtures: tiny offline checkpoints of every family, built once per test session (~0.4 s each).

Each fixture returns the `Path` of a directory loadable with `AutoProcessor.from_pretrained` and
`AutoModelForImageTextToText.from_pretrained` (no network). Treat the directories as read-only: they are shared
by every test in the session.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# trackio, the default tracker of `vlmr1 train`, reads TRACKIO_DIR once, when TRL first imports it: the tests' runs go
# to a folder of their own, never to the developer's ~/.cache/huggingface/trackio.
os.environ["TRACKIO_DIR"] = tempfile.mkdtemp(prefix="vlmr1-tests-trackio-")

# Hypothesis profiles of the property tests (rewards, task parsers): ``vlmr1-rewards`` (200 examples) in CI,
# ``HYPOTHESIS_PROFILE=nightly`` picks ``vlmr1-rewards-nightly`` (10,000). Tests select them explicitly.
_COMMON = dict(deadline=None,  # the tests assert their own per-call time bound
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("vlmr1-rewards", max_examples=200, **_COMMON)
settings.register_profile("vlmr1-rewards-nightly", max_examples=10_000, **_COMMON)


@pytest.fixture(autouse=True, scope="session")
def _image_check_cache(tmp_path_factory: pytest.TempPathFactory):
    """Images remembered as good (vlmr1.data.images) go to a folder of this session, not the user's ~/.cache."""
    import os

    before = os.environ.get("VLMR1_CACHE_DIR")
    os.environ["VLMR1_CACHE_DIR"] = str(tmp_path_factory.mktemp("vlmr1_cache"))
    yield
    if before is None:
        del os.environ["VLMR1_CACHE_DIR"]
    else:
        os.environ["VLMR1_CACHE_DIR"] = before


def _build(tmp_path_factory: pytest.TempPathFactory, arch: str) -> Path:
    """Build the tiny `arch` checkpoint with default sizes into a fresh session tmp dir."""
    from vlmr1.models.tiny import build_tiny_model

    return build_tiny_model(arch, tmp_path_factory.mktemp(f"tiny_{arch}"))


@pytest.fixture(scope="session")
def tiny_qwen25vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Qwen2.5-VL checkpoint (answers boxes in resized-image pixels)."""
    return _build(tmp_path_factory, "qwen2_5_vl")


@pytest.fixture(scope="session")
def tiny_qwen2vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Qwen2-VL checkpoint (answers boxes on a 0-1000 grid)."""
    return _build(tmp_path_factory, "qwen2_vl")


@pytest.fixture(scope="session")
def tiny_qwen3vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Qwen3-VL checkpoint (answers boxes on a 0-1000 grid, 16-px patches)."""
    return _build(tmp_path_factory, "qwen3_vl")


@pytest.fixture(scope="session")
def tiny_internvl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny InternVL checkpoint (56 px tiles of 4 image tokens, at most 4 + thumbnail; boxes on a 0-1000 grid)."""
    return _build(tmp_path_factory, "internvl")


@pytest.fixture(scope="session")
def tiny_glm4v_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny GLM-4.1V checkpoint (answers boxes on a 0-1000 grid)."""
    return _build(tmp_path_factory, "glm4v")
