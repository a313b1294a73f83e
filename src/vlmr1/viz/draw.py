"""``vlmr1 draw``: one PNG per jsonl line, the answer over the image next to the truth, the task's score in a caption.

What to draw is the task's (:meth:`vlmr1.tasks.Task.overlay`: true mask or boxes, answered contour, boxes or points,
all in original pixels); this module draws it: the truth translucent or outlined green, the answer red, a caption strip
below with the question and the score (or "unparsable").

* dataset lines (``vlmr1 data coco`` output): the answer is the last ``gpt`` turn, in original pixels;
* ``--predictions`` (an eval ``predictions.jsonl``): the answer is the ``prediction`` field (model text) in the
  model's frame, mapped to original pixels with ``frame_sizes``/``original_sizes``; the image folder is the line's
  ``image_folder`` unless ``--image-root`` is given.

Reusable pieces: :func:`render_overlay` (image + overlay + caption -> image), :func:`render_row` (one jsonl row ->
image and score), :func:`make_grid` (several images in rows).
"""

from __future__ import annotations

import functools
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

from vlmr1.arguments import CommandParser, integer
from vlmr1.data.images import decode_problem, load_rgb, to_rgb
from vlmr1.errors import UserError
from vlmr1.fileio import atomic_write
from vlmr1.tasks import Overlay, Task, get_task, task_for_row

TRUE_RGB = (40, 200, 70)
PRED_RGB = (230, 30, 30)
MASK_ALPHA = 0.45
MAX_SIDE = 1024  # larger images are drawn scaled down


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def _clean_points(points, width: int, height: int, least: int = 2) -> list[tuple[float, float]] | None:
    """Finite (x, y) tuples for ImageDraw, pulled to within one image size of the frame (keeps PIL's math sane);
    None when fewer than ``least`` are left."""
    try:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        return None
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) < least:
        return None
    p = np.clip(p, [-width, -height], [2 * width, 2 * height])
    return [tuple(v) for v in p.tolist()]


def render_overlay(image: Image.Image, overlay: Overlay | None = None, caption: str = "", *,
                   max_side: int | None = MAX_SIDE, min_side: int | None = None,
                   font: ImageFont.ImageFont | None = None) -> Image.Image:
    """Draw an :class:`~vlmr1.tasks.Overlay` (truth green, answer red, in original pixels) with a caption strip below.

    Args:
        image: the original image (any mode).
        overlay: what to draw; None draws the image and caption only.
        caption: text under the image (newlines allowed).
        max_side: scale the drawing down so its longer side is at most this (None: full size).
        min_side: scale a small image up by a whole factor (nearest neighbour) until its longer side reaches this.
        font: the caption's font (default: Pillow's own at a size that follows the width).

    Returns:
        A new RGB image (image height + caption strip).
    """
    overlay = overlay or Overlay()
    base = to_rgb(image).copy()  # 16-bit and transparent images as the model sees them
    w0, h0 = base.size
    f = min(1.0, max_side / max(w0, h0)) if max_side else 1.0
    if min_side and max(w0, h0) < min_side:
        f = float(max(1, round(min_side / max(w0, h0))))
    if f != 1.0:
        resample = Image.NEAREST if f > 1 else Image.BILINEAR
        base = base.resize((max(1, round(w0 * f)), max(1, round(h0 * f))), resample)
    w, h = base.size
    if overlay.true_mask is not None:
        m = np.asarray(overlay.true_mask, dtype=bool)
        if m.shape != (h, w):
            m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 127
        arr = np.asarray(base, dtype=np.float32).copy()
        arr[m] = arr[m] * (1 - MASK_ALPHA) + np.array(TRUE_RGB, dtype=np.float32) * MASK_ALPHA
        base = Image.fromarray(arr.round().astype(np.uint8))
    draw = ImageDraw.Draw(base)
    line_w = max(2, round(max(w, h) / 300))
    label_font = _font(max(10, round(w / 60)))
    pts = _clean_points(_scaled(overlay.answer_polygon, f), w, h)
    if pts:
        draw.line(pts + pts[:1], fill=PRED_RGB, width=line_w, joint="curve")
    for boxes, labels, rgb in ((overlay.true_boxes, overlay.true_labels, TRUE_RGB),
                               (overlay.answer_boxes, overlay.answer_labels, PRED_RGB)):
        for k, box in enumerate(boxes):
            corners = _clean_points(_scaled(box, f), w, h)
            if corners and len(corners) == 2 and corners[1][0] >= corners[0][0] and corners[1][1] >= corners[0][1]:
                draw.rectangle(corners, outline=rgb, width=line_w)
                if k < len(labels):
                    draw.text((corners[0][0] + line_w, corners[0][1] + line_w), str(labels[k]), fill=rgb,
                              font=label_font)
    arm = 3 * line_w
    for point in _clean_points(_scaled(overlay.answer_points, f), w, h, least=1) or []:
        x, y = point
        draw.line([(x - arm, y), (x + arm, y)], fill=PRED_RGB, width=line_w)
        draw.line([(x, y - arm), (x, y + arm)], fill=PRED_RGB, width=line_w)
    font_size = max(12, round(w / 45)) if font is None else font.getbbox("Ag")[3]
    lines = caption.splitlines() or [""]
    strip = (font_size + 6) * len(lines) + 6
    out = Image.new("RGB", (w, h + strip), (255, 255, 255))
    out.paste(base, (0, 0))
    text_draw = ImageDraw.Draw(out)
    font = font or _font(font_size)
    for k, text in enumerate(lines):
        text_draw.text((6, h + 4 + k * (font_size + 6)), text, fill=(0, 0, 0), font=font)
    return out


def _scaled(points, f: float):
    """``points`` (any nesting of x, y pairs) times ``f``, or None when they are not numbers."""
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr * f if arr.size >= 2 else None


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
               max_side: int | None = MAX_SIDE, task: Task | None = None) -> tuple[Image.Image, float | None]:
    """Draw one jsonl line's answer over its (already opened) image, as its task draws it.

    Args:
        row: a dataset or predictions line (truth fields, answer text, sizes).
        image: the row's image.
        predictions: the answer is ``prediction`` in the model's frame (else the last ``gpt`` turn, original pixels).
        task: the task; default the line's ``task_type`` (predictions files carry it), else the task that holds the
            line's truth and reads its answer (:func:`vlmr1.tasks.task_for_row`).

    Returns:
        (the drawing, the task's score, or None when the answer did not parse).
    """
    fields = dict(row)
    fields.setdefault("original_sizes", [list(image.size)])
    if not predictions:
        fields["frame_sizes"] = None  # dataset answers are in original pixels
    text = _answer_text(row, predictions) or ""
    if task is None:
        task = get_task(row["task_type"]) if row.get("task_type") else task_for_row(fields, _gold_answer(row))
    overlay = task.overlay(fields, text)
    question = _question(row)
    if len(question) > 90:
        question = question[:87] + "..."
    status = "unparsable" if overlay.score is None else f"{overlay.score_name} {overlay.score:.3f}"
    caption = f"{row.get('id', '')}: {question}\n{status}   (green: truth, red: {'prediction' if predictions else 'answer'})"
    return render_overlay(image, overlay, caption, max_side=max_side), overlay.score


def _gold_answer(row: Mapping[str, Any]) -> str:
    from vlmr1.rewards.parsing import answer_or_text

    return answer_or_text(_answer_text(row, predictions=False) or "")


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


class _LineProblem(ValueError):
    def __init__(self, kind: str, problem: str, fix: str):
        super().__init__(problem)
        self.kind, self.problem, self.fix = kind, problem, fix


def _draw_line(text: str, args, task: Task | None) -> tuple[Image.Image, float | None, dict]:
    """One jsonl line drawn, its score and its row; a problem with the line raises :class:`_LineProblem`."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise _LineProblem("bad_json", f"not valid UTF-8 (a bad byte at column {e.start + 1})",
                           "save the file as UTF-8") from None
    try:
        row = json.loads(text)
    except ValueError as e:
        raise _LineProblem("bad_json", f"not valid JSON ({e})", "one JSON object per line") from None
    if not isinstance(row, dict):
        raise _LineProblem("bad_json", f"a line must be a JSON object, got {type(row).__name__}",
                           "one JSON object per line with an 'image' path")
    try:
        path = _image_path(row, args.image_root)
    except ValueError as e:
        raise _LineProblem("bad_line", str(e), "give the line an 'image' path") from None
    problem = decode_problem(path)
    if problem is not None:
        raise _LineProblem(problem[0], problem[1], "pass --image-root (the folder the 'image' paths are relative "
                                                   "to), or replace the image")
    gold = _gold_answer(row)
    if task is None:
        task = get_task(row["task_type"]) if row.get("task_type") else task_for_row(row, gold)
    # a truth field the task cannot read (an invalid RLE, a box of strings) would be drawn as no truth at all
    bad_fields = [message for kind, message in task.check_row(gold, row) if kind == "bad_field"]
    if bad_fields:
        raise _LineProblem("bad_field", "; ".join(bad_fields), "`vlmr1 data check` lists every such line")
    try:
        drawn, score = render_row(row, load_rgb(path), args.predictions, args.max_side, task)
    except Exception as e:  # noqa: BLE001 - a field the task cannot draw (an invalid RLE, a box of strings, ...)
        raise _LineProblem("cannot_draw", f"{type(e).__name__}: {e}",
                           "`vlmr1 data check` names the field that is wrong") from None
    return drawn, score, row


def main(argv: list[str] | None = None) -> list[Path]:
    """``vlmr1 draw JSONL --image-root DIR --output OUT [--limit N] [--predictions]``. Returns the written PNGs.

    A line that cannot be drawn (bad JSON, a missing or undecodable image, a field the task cannot read) is reported
    as ``file:line: kind: what (fix: ...)`` on stderr and skipped; when no line can be drawn, that is the error.
    """
    p = CommandParser(prog="vlmr1 draw", description=__doc__.split("\n\n")[0])
    p.add_argument("jsonl", help="dataset jsonl (vlmr1 data coco/refcoco) or eval predictions.jsonl")
    p.add_argument("--image-root", "--image_root", dest="image_root",
                   help="folder the 'image' paths are relative to (predictions: default the line's image_folder)")
    p.add_argument("--output", required=True, help="folder for the PNGs")
    p.add_argument("--limit", type=integer(1), default=None, help="draw only the first N lines")
    p.add_argument("--predictions", action="store_true", help="draw the 'prediction' field (model frame)")
    p.add_argument("--max_side", type=integer(16, 16384), default=MAX_SIDE,
                   help="longer side of each PNG's image part")
    p.add_argument("--task_type", "--task-type", default=None,
                   help="the task that draws the lines (default: a line's task_type, else the task that holds its "
                        "truth fields and reads its answer)")
    args = p.parse_args(argv)
    if args.image_root is None and not args.predictions:
        p.error("--image-root is required (predictions files may use their image_folder field instead)")
    try:
        task = get_task(args.task_type) if args.task_type else None
    except ValueError as e:
        p.error(str(e))
    if not os.path.isfile(args.jsonl):
        raise UserError("file not found", where=args.jsonl, kind="missing_file", fix="give a jsonl file to draw")
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, scores, unparsable, skipped = [], [], 0, 0
    # utf-8-sig and surrogateescape, as train and data check read: a BOM is fine, a bad byte fails its line only
    with open(args.jsonl, encoding="utf-8-sig", errors="surrogateescape") as f:
        for line_no, text in enumerate(f, start=1):
            if args.limit is not None and len(written) >= args.limit:
                break
            if not text.strip():
                continue
            try:
                drawn, score, row = _draw_line(text, args, task)
            except _LineProblem as e:
                print(UserError(e.problem, where=args.jsonl, line=line_no, fix=e.fix, kind=e.kind), file=sys.stderr)
                skipped += 1
                continue
            buf = io.BytesIO()
            drawn.save(buf, format="PNG", optimize=True)
            target = out_dir / f"{len(written):05d}_{_slug(row.get('id', line_no))}.png"
            atomic_write(target, buf.getvalue())
            written.append(target)
            if score is None:
                unparsable += 1
            else:
                scores.append(score)
    if skipped and not written:
        raise UserError(f"none of its {skipped} line(s) could be drawn (listed above)", where=args.jsonl,
                        kind="nothing_drawn", fix="fix the lines above; `vlmr1 data check` lists every problem")
    mean = f"{sum(scores) / len(scores):.3f}" if scores else "n/a"
    print(f"wrote {len(written)} PNGs to {out_dir} (mean score {mean}, unparsable {unparsable}"
          + (f", skipped {skipped} line(s) that could not be drawn" if skipped else "") + ")")
    return written


if __name__ == "__main__":
    main(sys.argv[1:])
