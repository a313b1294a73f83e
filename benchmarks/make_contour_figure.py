"""Make ``docs/chebyshev_contours.png``: real COCO masks and their 8-term Chebyshev contours (the README figure).

Top row: four objects from the two shared val2017 images - true mask (green), parametric answer (red), radial
answer (blue, dashed), IoU of each (refined fit, 0.1-px rounding, as ``vlmr1 data coco`` writes them). Bottom:
what the parametric answer encodes for the first object - x(t) and y(t) of the true outline (traced clockwise
from its topmost point) and their 8-coefficient Chebyshev series.

    .venv/bin/python benchmarks/make_contour_figure.py [--output docs/chebyshev_contours.png]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from vlmr1.data.coco import annotation_rle  # noqa: E402
from vlmr1.geometry import ParametricContour, RadialContour, encode_mask_rle, outer_contour, rle_to_mask  # noqa: E402

SHARED = Path("/work/shared/data/coco-samples")
if not SHARED.is_dir():
    SHARED = ROOT.parent / "shared" / "data" / "coco-samples"
OBJECTS = (43, 3, 33, 41)  # annotation ids: horse, person, truck, a harder horse
MAX_BYTES = 200_000


def crop_box(mask: np.ndarray, pad: float = 0.15) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    p = int(pad * max(x1 - x0, y1 - y0)) + 2
    h, w = mask.shape
    return max(0, x0 - p), max(0, y0 - p), min(w, x1 + p), min(h, y1 + p)


def arc_resample(line: np.ndarray, n: int) -> np.ndarray:
    closed = np.vstack([line, line[:1]])
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(closed, axis=0).T))])
    q = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(q, s, closed[:, 0]), np.interp(q, s, closed[:, 1])], axis=1)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", default=str(ROOT / "docs" / "chebyshev_contours.png"))
    args = p.parse_args(argv)
    data = json.loads((SHARED / "val2017_instances_2img.json").read_text())
    images = {im["id"]: im for im in data["images"]}
    names = {c["id"]: c["name"] for c in data["categories"]}
    anns = {a["id"]: a for a in data["annotations"]}

    fig = plt.figure(figsize=(10, 5.6), dpi=100)
    grid = fig.add_gridspec(2, len(OBJECTS), height_ratios=[1.25, 1])
    first = None
    for k, ann_id in enumerate(OBJECTS):
        ann = anns[ann_id]
        im = images[ann["image_id"]]
        rle = annotation_rle(ann["segmentation"], im["height"], im["width"])
        mask = rle_to_mask(rle)
        par, par_iou = encode_mask_rle(rle, "parametric", 8, "refined")
        rad, rad_iou = encode_mask_rle(rle, "radial", 8, "refined")
        par_c, rad_c = ParametricContour.from_json_dict(par), RadialContour.from_json_dict(rad)
        first = first or (mask, par_c, names[ann["category_id"]])
        x0, y0, x1, y1 = crop_box(mask)
        with Image.open(SHARED / "images" / im["file_name"]) as img:
            pixels = np.asarray(img.convert("RGB"))[y0:y1, x0:x1]
        ax = fig.add_subplot(grid[0, k])
        ax.imshow(pixels, extent=(x0, x1, y1, y0))
        overlay = np.zeros((y1 - y0, x1 - x0, 4))
        overlay[mask[y0:y1, x0:x1]] = (0.15, 0.8, 0.3, 0.45)
        ax.imshow(overlay, extent=(x0, x1, y1, y0))
        for contour, style in ((par_c, dict(color="red", lw=1.8)), (rad_c, dict(color="#1f5fff", lw=1.5, ls="--"))):
            poly = contour.to_polygon(256)
            ax.plot(*np.vstack([poly, poly[:1]]).T, **style)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{names[ann['category_id']]}\nparametric {par_iou:.2f} | radial {rad_iou:.2f}", fontsize=9)

    mask, contour, name = first
    line = arc_resample(outer_contour(mask), 400)
    t = np.linspace(-1, 1, len(line))
    fitted = contour.to_polygon(len(line))
    ax = fig.add_subplot(grid[1, :])
    for j, (axis, colour) in enumerate((("x", "tab:red"), ("y", "tab:blue"))):
        ax.plot(t, line[:, j], color=colour, lw=1, alpha=0.5, label=f"{axis}(t) of the true outline")
        ax.plot(t, fitted[:, j], color=colour, lw=2, label=f"{axis}(t) from 8 Chebyshev coefficients")
    ax.set_xlabel("t (outline traced clockwise from the topmost point)")
    ax.set_ylabel("pixels")
    ax.set_title(f"the {name}'s answer: " + '{"x": [' + ", ".join(f"{v:g}" for v in np.round(contour.x, 1)[:3])
                 + ', ...], "y": [...]}', fontsize=9)
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    # a 128-colour palette keeps the photo crops readable and the file well under 200 KB
    out = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(128, dither=Image.Dither.NONE)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    out.save(args.output, optimize=True)
    size = Path(args.output).stat().st_size
    print(f"wrote {args.output} ({size / 1000:.0f} KB)")
    if size > MAX_BYTES:
        raise SystemExit(f"{args.output} is {size} bytes, over the {MAX_BYTES} budget")


if __name__ == "__main__":
    main()
