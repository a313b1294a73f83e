"""``vlmr1 draw``: one PNG per jsonl line, the decoded answer over the image next to the truth, IoU in a caption.

Drawing: the true mask filled translucent green, the decoded contour outlined red (boxes: true box green, answered
box red), a caption strip below with the question and the IoU (or "unparsable").

* dataset lines (``vlmr1 data coco`` output): the answer is the last ``gpt`` turn, in original pixels;
* ``--predictions`` (an eval ``predictions.jsonl``): the answer is the ``prediction`` field (model text) in the
  model's frame, mapped to original pixels with ``frame_sizes``/``original_sizes``; the image folder is the line's
  ``image_folder`` unless ``--image-root`` is given.

Reusable pieces: :func:`render_overlay` (image + mask + polygon/boxes + caption -> image), :func:`render_row`
(one jsonl row -> image and IoU), :func:`make_grid` (several images in rows).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

TRUE_RGB = (40, 200, 70)
PRED_RGB = (230, 30, 30)
MASK_ALPHA = 0.45
MAX_SIDE = 1024  # larger images are drawn scaled down


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def _clean_points(points, width: int, height: int) -> list[tuple[float, float]] | None:
    """Finite (x, y) tuples for ImageDraw, pulled to within one image size of the frame (keeps PIL's math sane)."""
    try:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        return None
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) < 2:
        return None
    p = np.clip(p, [-width, -height], [2 * width, 2 * height])
    return [tuple(v) for v in p.tolist()]


def render_overlay(image: Image.Image, true_mask: np.ndarray | None = None, polygon: np.ndarray | None = None,
                   caption: str = "", *, true_box: Sequence[float] | None = None,
                   pred_box: Sequence[float] | None = None, max_side: int | None = MAX_SIDE) -> Image.Image:
    """Draw the truth (green) and an answer (red) over an image, with a caption strip below.

    Args:
        image: the original image (any mode).
        true_mask: (H, W) bool mask in original pixels (resized to the image if it differs), or None.
        polygon: (K, 2) x, y outline in original pixels, or None.
        caption: text under the image (newlines allowed).
        true_box, pred_box: ``[x1, y1, x2, y2]`` in original pixels, or None.
        max_side: scale the drawing down so its longer side is at most this (None: full size).

    Returns:
        A new RGB image (image height + caption strip).
    """
    base = image.convert("RGB")
    w0, h0 = base.size
    f = min(1.0, max_side / max(w0, h0)) if max_side else 1.0
    if f < 1.0:
        base = base.resize((max(1, round(w0 * f)), max(1, round(h0 * f))), Image.BILINEAR)
    w, h = base.size
    if true_mask is not None:
        m = np.asarray(true_mask, dtype=bool)
        if m.shape != (h, w):
            m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 127
        arr = np.asarray(base, dtype=np.float32).copy()
        arr[m] = arr[m] * (1 - MASK_ALPHA) + np.array(TRUE_RGB, dtype=np.float32) * MASK_ALPHA
        base = Image.fromarray(arr.round().astype(np.uint8))
    draw = ImageDraw.Draw(base)
    line_w = max(2, round(max(w, h) / 300))
    if polygon is not None:
        pts = _clean_points(np.asarray(polygon, dtype=np.float64) * f if _is_numeric(polygon) else None, w, h)
        if pts:
            draw.line(pts + pts[:1], fill=PRED_RGB, width=line_w, joint="curve")
    for box, rgb in ((true_box, TRUE_RGB), (pred_box, PRED_RGB)):
        pts = _clean_points(np.asarray(box, dtype=np.float64) * f if _is_numeric(box) else None, w, h)
        if pts and len(pts) == 2 and pts[1][0] >= pts[0][0] and pts[1][1] >= pts[0][1]:
            draw.rectangle(pts, outline=rgb, width=line_w)
    font_size = max(12, round(w / 45))
    lines = caption.splitlines() or [""]
    strip = (font_size + 6) * len(lines) + 6
    out = Image.new("RGB", (w, h + strip), (255, 255, 255))
    out.paste(base, (0, 0))
    text_draw = ImageDraw.Draw(out)
    font = _font(font_size)
    for k, text in enumerate(lines):
        text_draw.text((6, h + 4 + k * (font_size + 6)), text, fill=(0, 0, 0), font=font)
    return out


def _is_numeric(value) -> bool:
    try:
        return value is not None and np.asarray(value, dtype=np.float64).size >= 4
    except (TypeError, ValueError):
        return False


def make_grid(images: Sequence[Image.Image], columns: int = 4, pad: int = 4,
              background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Paste images into a grid, row by row (cells as large as the largest image).

    Args:
        images: the tiles (e.g. :func:`render_overlay` outputs).
        columns: tiles per row.
        pad: pixels between tiles.

    Returns:
        One RGB image.
    """
    if not images:
        raise ValueError("make_grid needs at least one image")
    cw = max(im.width for im in images)
    ch = max(im.height for im in images)
    rows = -(-len(images) // columns)
    cols = min(columns, len(images))
    grid = Image.new("RGB", (cols * cw + (cols + 1) * pad, rows * ch + (rows + 1) * pad), background)
    for k, im in enumerate(images):
        r, c = divmod(k, columns)
        grid.paste(im.convert("RGB"), (pad + c * (cw + pad), pad + r * (ch + pad)))
    return grid


def _answer_text(row: Mapping[str, Any], predictions: bool) -> str | None:
    if predictions:
        pred = row.get("prediction")
        return pred if isinstance(pred, str) else None
    turns = row.get("conversations")
    if isinstance(turns, list) and turns and isinstance(turns[-1], Mapping):
        return str(turns[-1].get("value", ""))
    return None


def _question(row: Mapping[str, Any]) -> str:
    turns = row.get("conversations")
    if isinstance(turns, list):
        for turn in turns:
            if isinstance(turn, Mapping) and str(turn.get("from", "")).lower() in ("human", "user"):
                return str(turn.get("value", "")).replace("<image>", "").strip()
    return str(row.get("question") or row.get("category") or "")


def render_row(row: Mapping[str, Any], image: Image.Image, predictions: bool = False,
               max_side: int | None = MAX_SIDE) -> tuple[Image.Image, float | None]:
    """Render one jsonl row over its (already opened) image.

    Args:
        row: a dataset or predictions line (``mask``/``bbox`` truth, answer text, sizes).
        image: the row's image.
        predictions: the answer is ``prediction`` in the model's frame (else the last ``gpt`` turn, original pixels).

    Returns:
        (the drawing, IoU or None when the answer did not parse).
    """
    from vlmr1.geometry import box_iou_pairwise
    from vlmr1.rewards.box import ground_truth_box, predicted_box
    from vlmr1.rewards.mask import answer_polygon, seg_score

    fields = dict(row)
    fields.setdefault("original_sizes", [list(image.size)])
    if not predictions:
        fields["frame_sizes"] = None  # dataset answers are in original pixels
    text = _answer_text(row, predictions) or ""
    true_mask, polygon, true_box, pred_box, iou = None, None, None, None, None
    if isinstance(row.get("mask"), Mapping):
        from vlmr1.geometry import rle_to_mask

        true_mask = rle_to_mask(row["mask"])
        polygon = answer_polygon(text, fields)
        if polygon is not None:
            iou = seg_score(text, fields).iou
    if polygon is None and row.get("bbox") is not None:
        try:
            true_box = ground_truth_box(row.get("bbox"), row.get("solution"))
        except (ValueError, TypeError):
            true_box = None
        pred_box = predicted_box(text, fields.get("original_sizes"), fields.get("frame_sizes"))
        if true_box is not None and pred_box is not None:
            iou = float(box_iou_pairwise(pred_box, true_box))
    question = _question(row)
    if len(question) > 90:
        question = question[:87] + "..."
    status = "unparsable" if iou is None else f"IoU {iou:.3f}"
    caption = f"{row.get('id', '')}: {question}\n{status}   (green: truth, red: {'prediction' if predictions else 'answer'})"
    drawn = render_overlay(image, true_mask, polygon, caption, true_box=true_box, pred_box=pred_box,
                           max_side=max_side)
    return drawn, iou


def _image_path(row: Mapping[str, Any], image_root: str | None) -> str:
    image = row.get("image")
    if isinstance(image, list):
        image = image[0] if image else None
    if not isinstance(image, str) or not image:
        raise ValueError("the line has no 'image'")
    folder = image_root if image_root is not None else row.get("image_folder") or ""
    return os.path.join(str(folder), image)


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(value))[:60] or "line"


def main(argv: list[str] | None = None) -> list[Path]:
    """``vlmr1 draw JSONL --image-root DIR --output OUT [--limit N] [--predictions]``. Returns the written PNGs."""
    from vlmr1.data.download import atomic_write_bytes

    p = argparse.ArgumentParser(prog="vlmr1 draw", description=__doc__.split("\n\n")[0])
    p.add_argument("jsonl", help="dataset jsonl (vlmr1 data coco/refcoco) or eval predictions.jsonl")
    p.add_argument("--image-root", "--image_root", dest="image_root",
                   help="folder the 'image' paths are relative to (predictions: default the line's image_folder)")
    p.add_argument("--output", required=True, help="folder for the PNGs")
    p.add_argument("--limit", type=int, default=None, help="draw only the first N lines")
    p.add_argument("--predictions", action="store_true", help="draw the 'prediction' field (model frame)")
    p.add_argument("--max_side", type=int, default=MAX_SIDE, help="longer side of each PNG's image part")
    args = p.parse_args(argv)
    if args.image_root is None and not args.predictions:
        p.error("--image-root is required (predictions files may use their image_folder field instead)")
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, ious, unparsable = [], [], 0
    with open(args.jsonl, encoding="utf-8") as f:
        for line_no, text in enumerate(f, start=1):
            if args.limit is not None and len(written) >= args.limit:
                break
            if not text.strip():
                continue
            try:
                row = json.loads(text)
                if not isinstance(row, dict):
                    raise ValueError("a line must be a JSON object")
                path = _image_path(row, args.image_root)
            except ValueError as e:
                raise ValueError(f"{args.jsonl}:{line_no}: {e}; fix: one JSON object per line with an 'image' "
                                 "path") from None
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{args.jsonl}:{line_no}: image {path} not found; fix: pass --image-root "
                                        "(the folder the 'image' paths are relative to)")
            with Image.open(path) as img:
                drawn, iou = render_row(row, img, args.predictions, args.max_side)
            buf = io.BytesIO()
            drawn.save(buf, format="PNG", optimize=True)
            target = out_dir / f"{len(written):05d}_{_slug(row.get('id', line_no))}.png"
            atomic_write_bytes(target, buf.getvalue())
            written.append(target)
            if iou is None:
                unparsable += 1
            else:
                ious.append(iou)
    mean = f"{sum(ious) / len(ious):.3f}" if ious else "n/a"
    print(f"wrote {len(written)} PNGs to {out_dir} (mean IoU {mean}, unparsable {unparsable})")
    return written


if __name__ == "__main__":
    main(sys.argv[1:])
