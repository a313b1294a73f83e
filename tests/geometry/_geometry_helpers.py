"""Shared helpers for the geometry tests: the real COCO masks and a synthetic asymmetric shape."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vlmr1.geometry import polygon_to_mask, rle_area

# CI lays shared/ beside the clone; developers' machines have it at /work/shared.
DATA = next((p for p in (Path(__file__).resolve().parents[3] / "shared/data/coco-samples",
                         Path("/work/shared/data/coco-samples")) if p.is_dir()), Path("/work/shared/data/coco-samples"))
MIN_AREA = 64


def load_real_rles() -> list[dict]:
    """Non-crowd masks with area >= 64 px from both shared COCO files (712 + 47 = 759)."""
    rles = [a["segmentation"] for a in json.loads((DATA / "val2014_predicted_masks_734.json").read_text())]
    gt = json.loads((DATA / "val2017_instances_2img.json").read_text())["annotations"]
    rles += [a["segmentation"] for a in gt if not a["iscrowd"]]
    return [r for r in rles if rle_area(r) >= MIN_AREA]


def blob(height: int = 90, width: int = 110, centre=(52.0, 41.0), phase: float = 0.7) -> np.ndarray:
    """A smooth star-shaped blob with no mirror symmetry (neither left-right nor up-down)."""
    theta = np.linspace(-np.pi, np.pi, 400, endpoint=False)
    r = 28 + 9 * np.cos(theta - phase) + 5 * np.sin(2 * theta + 0.4) + 3 * np.cos(3 * theta + 1.1)
    pts = np.stack([centre[0] + r * np.cos(theta), centre[1] + r * np.sin(theta)], axis=1)
    return polygon_to_mask(pts, height, width)
