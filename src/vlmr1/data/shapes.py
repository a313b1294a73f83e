"""Synthetic referring segmentation: coloured shapes, one referring phrase per line, offline and in seconds.

``vlmr1 data shapes --output_dir DIR --num_train N --num_val M [--seed S] [--image_size 112]`` writes
``DIR/train.jsonl``, ``DIR/val.jsonl`` and ``DIR/images/*.png`` in the same jsonl fields as ``vlmr1 data coco``::

    {"id": "shapes-train-000000", "image": "images/train-000000.png",
     "conversations": [{"from": "human", "value": "<image>Outline the large blue ellipse on the left."},
                       {"from": "gpt", "value": "<answer>{\\"x\\": [...], \\"y\\": [...]}</answer>"}],
     "mask": {"size": [H, W], "counts": "..."}, "bbox": [x1, y1, x2, y2], "category": "ellipse",
     "phrase": "the large blue ellipse on the left", "num_shapes": 3, "fit_iou": 0.96}

Each image holds 1-4 non-overlapping shapes (``--max_shapes``): ellipses, triangles, squares, hexagons,
five-pointed stars (all star-shaped) and crescents (not star-shaped); with ``--solo P`` a share P of the images
holds one large shape instead. A phrase names colour and kind and adds size or position words until exactly one
shape in the image fits it. The answer is the parametric Chebyshev contour that ``vlmr1.geometry``
fits to the true mask (integer pixels by default), in pixels of the image, which is also the model's frame when
``image_size`` is a multiple of 28 within the processor's pixel limits.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from vlmr1.arguments import CommandParser, integer, number
from vlmr1.errors import bad_argument
from vlmr1.fileio import write_jsonl
from vlmr1.geometry import DEFAULT_TERMS, encode_mask_rles, mask_to_bbox, mask_to_rle, polygon_to_mask
from vlmr1.geometry.contours import MAX_TERMS
from vlmr1.workers import die_with_parent

__all__ = ["COLORS", "KINDS", "STAR_SHAPED_KINDS", "Shape", "make_scene", "describe", "generate", "main"]

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 230),
    "yellow": (235, 215, 40), "purple": (150, 60, 190), "orange": (245, 140, 30),
}
KINDS = ("ellipse", "triangle", "square", "hexagon", "star", "crescent")
STAR_SHAPED_KINDS = frozenset(KINDS) - {"crescent"}
# Equivalent radius (px, at 112 px) below / above which a shape is "small" / "large"; between: no size word.
SMALL_R, LARGE_R = 15.0, 21.0
# Outer radius (px at 112 px) of the single shape of a "solo" image.
SOLO_RADIUS = (34.0, 50.0)
MAX_DECIMALS = 6  # 1e-6 px is below any rasteriser's resolution
MAX_SHAPES = 12  # more do not fit a 112 px image apart


@dataclass
class Shape:
    """One shape of a scene: what it is, where, and its exact pixel mask."""

    kind: str
    color: str
    mask: np.ndarray  # (H, W) bool

    @property
    def radius(self) -> float:
        return math.sqrt(self.mask.sum() / math.pi)

    @property
    def centre(self) -> tuple[float, float]:
        ys, xs = np.nonzero(self.mask)
        return float(xs.mean()) + 0.5, float(ys.mean()) + 0.5


def _polygon(cx, cy, radii, angle, size) -> np.ndarray:
    """Mask of the polygon with vertices at ``radii[k]`` around (cx, cy), evenly spaced from ``angle``."""
    theta = angle + 2 * np.pi * np.arange(len(radii)) / len(radii)
    pts = np.stack([cx + radii * np.cos(theta), cy + radii * np.sin(theta)], axis=1)
    return polygon_to_mask(pts, size, size)


def render_shape(kind: str, cx: float, cy: float, r: float, angle: float, aspect: float, size: int) -> np.ndarray:
    """Rasterise one shape (pixel centres inside) on a ``size`` x ``size`` grid.

    Args:
        kind: one of ``KINDS``.
        cx, cy: centre in pixels; r: outer radius in pixels; angle: rotation in radians.
        aspect: minor/major axis ratio of ellipses (ignored by the other kinds).
        size: image side.
    Returns:
        (size, size) bool mask.
    """
    yy, xx = np.mgrid[:size, :size] + 0.5
    if kind in ("ellipse", "crescent"):
        # rotated coordinates; the ellipse's major axis is r, the crescent's outer disk has radius r
        u = (xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)
        v = -(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)
        if kind == "ellipse":
            return (u / r) ** 2 + (v / (r * aspect)) ** 2 <= 1.0
        # the inner disk pokes out of the outer one (0.4 + 0.8 > 1), so the bite leaves one connected crescent
        return (u * u + v * v <= r * r) & ((u - 0.4 * r) ** 2 + v * v > (0.8 * r) ** 2)
    if kind == "star":
        return _polygon(cx, cy, np.tile([r, 0.55 * r], 5), angle, size)
    sides = {"triangle": 3, "square": 4, "hexagon": 6}[kind]
    return _polygon(cx, cy, np.full(sides, r), angle, size)


def make_scene(rng: np.random.Generator, size: int = 112, min_shapes: int = 1, max_shapes: int = 4,
               background: int | None = None, radius: tuple[float, float] = (12.0, 28.0),
               solo: float = 0.0) -> tuple[np.ndarray, list[Shape]]:
    """Draw a scene of non-overlapping shapes on a grey background.

    Args:
        rng: random generator (the only source of randomness).
        size: image side in pixels; shape radii scale with it.
        min_shapes, max_shapes: shape count range (inclusive).
        background: grey level of every background, or None for a random tinted grey per image.
        radius: range of the shapes' outer radius, in pixels of a 112 px image (scaled with ``size``).
        solo: probability that the image holds a single large shape instead (outer radius in ``SOLO_RADIUS``).
    Returns:
        (H, W, 3) uint8 image and its shapes; every shape mask is non-empty and disjoint from the others.
    """
    scale = size / 112.0
    image = np.empty((size, size, 3), np.uint8)
    if background is None:
        grey = int(rng.choice([rng.integers(25, 70), rng.integers(175, 225)]))
        image[:] = np.clip(grey + rng.integers(-12, 13, 3), 0, 255)
    else:
        image[:] = background
    taken = np.zeros((size, size), bool)
    shapes: list[Shape] = []
    alone = bool(rng.random() < solo)
    if alone:
        radius, count = SOLO_RADIUS, 1
    else:
        count = int(rng.integers(min_shapes, max_shapes + 1))
    for _ in range(count):
        kind, color = str(rng.choice(KINDS)), str(rng.choice(list(COLORS)))
        for _try in range(30):
            r = min(rng.uniform(*radius) * scale, size / 2 - 2)
            cx, cy = rng.uniform(r + 1, size - r - 1, 2)
            mask = render_shape(kind, cx, cy, r, rng.uniform(0, 2 * np.pi), rng.uniform(0.45, 1.0), size)
            if mask.sum() >= 40 and not (mask & taken).any():
                break
        else:
            continue
        # a 2 px gap keeps every true mask whole and every shape separately visible
        taken |= ndimage.binary_dilation(mask, iterations=2)
        image[mask] = COLORS[color]
        shapes.append(Shape(kind, color, mask))
    return image, shapes


def _attributes(shape: Shape, size: int) -> dict[str, str | None]:
    """The words that are true of a shape: size, horizontal and vertical position (None: no word)."""
    r, (cx, cy) = shape.radius * 112.0 / size, shape.centre
    return {
        "size": "small" if r < SMALL_R else "large" if r > LARGE_R else None,
        "h": "left" if cx < 0.4 * size else "right" if cx > 0.6 * size else None,
        "v": "top" if cy < 0.4 * size else "bottom" if cy > 0.6 * size else None,
    }


def _phrase(shape: Shape, words: dict[str, str | None]) -> str:
    size = f"{words['size']} " if words.get("size") else ""
    text = f"the {size}{shape.color} {shape.kind}"
    h, v = words.get("h"), words.get("v")
    if h and v:
        return f"{text} in the {v} {h}"
    if h:
        return f"{text} on the {h}"
    return f"{text} at the {v}" if v else text


def describe(shapes: Sequence[Shape], index: int, rng: np.random.Generator, size: int = 112) -> str | None:
    """A referring phrase that fits ``shapes[index]`` and no other shape, or None when none can.

    The shortest unique phrase is preferred; sometimes a true but unneeded word is added, for variety.
    """
    attrs = [_attributes(s, size) for s in shapes]
    target = shapes[index]

    def unique(keys: tuple[str, ...]) -> bool:
        if any(attrs[index][k] is None for k in keys):
            return False
        return sum(s.kind == target.kind and s.color == target.color
                   and all(a[k] == attrs[index][k] for k in keys) for s, a in zip(shapes, attrs)) == 1

    options = [(), ("size",), ("h",), ("v",), ("size", "h"), ("size", "v"), ("h", "v"), ("size", "h", "v")]
    for keys in options:
        if unique(keys):
            extra = [k for k in ("size", "h", "v") if k not in keys and attrs[index][k] is not None]
            if extra and rng.random() < 0.3:
                keys = (*keys, str(rng.choice(extra)))
            return _phrase(target, {k: attrs[index][k] for k in keys})
    return None


def _answer_text(answer: dict, decimals: int, compact: bool = False) -> str:
    """``<answer>{"x": [...], "y": [...]}</answer>``; integers when ``decimals`` is 0 (never ``-0``).

    ``compact`` drops the spaces after commas and colons: a quarter fewer tokens for a model that reads digits
    one token at a time, and the same JSON.
    """
    fix = (lambda v: int(round(v)) + 0) if decimals == 0 else (lambda v: round(v, decimals) + 0.0)
    value = {k: [fix(v) for v in answer[k]] for k in ("x", "y")}
    return "<answer>" + json.dumps(value, separators=(",", ":") if compact else None) + "</answer>"


_FIT_CHUNK = 128  # masks fitted as one batch


def _fit_chunk(rles: list[dict], terms: int, decimals: int) -> list[tuple[dict, float]]:
    out = encode_mask_rles(rles, "parametric", terms, "refined", decimals)
    for o in out:
        if isinstance(o, ValueError):
            raise o
    return out


def _fit_all(rles: list[dict], terms: int, decimals: int, workers: int, progress: bool, desc: str) -> list:
    """``encode_mask_rles`` over every mask in fixed chunks, in ``workers`` processes (order and chunks kept, so
    results do not depend on the number of workers)."""
    fit = functools.partial(_fit_chunk, terms=terms, decimals=decimals)
    chunks = [rles[i : i + _FIT_CHUNK] for i in range(0, len(rles), _FIT_CHUNK)]
    bar = tqdm(total=len(rles), desc=desc, unit="mask", disable=not progress, leave=False)
    out = []
    if workers <= 1 or len(rles) < 200:
        for chunk in map(fit, chunks):
            out += chunk
            bar.update(len(chunk))
    else:
        # spawn: the demo calls this with torch loaded, whose threads do not survive a fork
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            for chunk in pool.map(fit, chunks):
                out += chunk
                bar.update(len(chunk))
    bar.close()
    return out


def _rows(split: str, count: int, rng: np.random.Generator, output_dir: str, size: int, min_shapes: int,
          max_shapes: int, background: int | None, solo: float, queries_per_image: int, terms: int,
          decimals: int, compact: bool, workers: int, progress: bool) -> list[dict]:
    """Generate ``count`` lines of one split, writing its images; ``queries_per_image`` lines per image at most."""
    rows: list[dict] = []
    bar = tqdm(total=count, desc=f"shapes {split}: scenes", unit="line", disable=not progress, leave=False)
    image_no = 0
    while len(rows) < count:
        image, shapes = make_scene(rng, size, min_shapes, max_shapes, background, solo=solo)
        described = [(i, describe(shapes, i, rng, size)) for i in rng.permutation(len(shapes))]
        described = [(i, p) for i, p in described if p is not None][:queries_per_image]
        if not described:
            continue
        rel = f"images/{split}-{image_no:06d}.png"
        Image.fromarray(image).save(os.path.join(output_dir, rel))
        image_no += 1
        for i, phrase in described[: count - len(rows)]:
            rows.append({
                "id": f"shapes-{split}-{len(rows):06d}",
                "image": rel,
                "conversations": [{"from": "human", "value": f"<image>Outline {phrase}."}],
                "mask": mask_to_rle(shapes[i].mask),
                "bbox": [float(v) for v in mask_to_bbox(shapes[i].mask)],
                "category": shapes[i].kind,
                "phrase": phrase,
                "num_shapes": len(shapes),
            })
            bar.update(1)
    bar.close()
    fits = _fit_all([r["mask"] for r in rows], terms, decimals, workers, progress, f"shapes {split}: contours")
    for row, (answer, fit_iou) in zip(rows, fits):
        row["conversations"].append({"from": "gpt", "value": _answer_text(answer, decimals, compact)})
        row["fit_iou"] = round(fit_iou, 4)
    return rows


def generate(output_dir: str, num_train: int, num_val: int, seed: int = 0, image_size: int = 112,
             min_shapes: int = 1, max_shapes: int = 4, background: int | None = None, solo: float = 0.0,
             queries_per_image: int = 2, terms: int = DEFAULT_TERMS, decimals: int = 0, compact: bool = False,
             workers: int = 2, progress: bool = True) -> dict[str, str]:
    """Write ``train.jsonl``, ``val.jsonl`` and ``images/`` under ``output_dir``.

    Args:
        output_dir: folder to write (created); it is also the image folder of both files.
        num_train, num_val: line counts.
        seed: everything is a function of it; train and validation use independent streams.
        image_size: square image side in pixels.
        min_shapes, max_shapes: shapes per image.
        background: grey level of every background (None: a random tinted grey per image).
        solo: share of images that hold one large shape (see :func:`make_scene`).
        queries_per_image: at most this many lines (different shapes) per image.
        terms: Chebyshev terms per coordinate.
        decimals: rounding of the answer numbers (0: integers).
        compact: write the answer JSON without spaces (``{"x":[1,2],...}``).
        workers: processes fitting the contours (the output does not depend on it).
        progress: show progress bars.
    Returns:
        ``{"train": path, "val": path, "image_folder": output_dir}``.
    """
    if image_size < 56:
        raise bad_argument("--image_size", f"must be at least 56, got {image_size}")
    if not 1 <= min_shapes <= max_shapes:
        raise bad_argument("--min_shapes", f"need 1 <= min_shapes <= max_shapes, got {min_shapes}, {max_shapes}")
    if num_train < 0 or num_val < 0 or num_train + num_val < 1:
        raise bad_argument("--num_train", f"need line counts >= 0 and at least one line, got {num_train} train and "
                           f"{num_val} val")
    if queries_per_image < 1:  # 0 would never fill a split
        raise bad_argument("--queries_per_image", f"must be at least 1, got {queries_per_image}")
    if not 0 <= decimals <= MAX_DECIMALS:  # negative decimals round the contour away (fit_iou 0)
        raise bad_argument("--decimals", f"must be in [0, {MAX_DECIMALS}], got {decimals}")
    os.makedirs(os.path.join(output_dir, "images"), exist_ok=True)
    train_rng, val_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    paths = {"image_folder": output_dir}
    for split, count, rng in (("train", num_train, train_rng), ("val", num_val, val_rng)):
        rows = _rows(split, count, rng, output_dir, image_size, min_shapes, max_shapes, background, solo,
                     queries_per_image, terms, decimals, compact, workers, progress)
        paths[split] = os.path.join(output_dir, f"{split}.jsonl")
        write_jsonl(paths[split], rows)
    return paths


def main(argv: list[str] | None = None) -> dict[str, str]:
    """``vlmr1 data shapes``: parse flags and generate; prints where the files are.

    Args:
        argv: the flags (without ``data shapes``); None reads ``sys.argv[1:]``.
    Returns:
        The paths from :func:`generate`.
    """
    p = CommandParser(prog="vlmr1 data shapes", description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--num_train", type=integer(0), default=2000)
    p.add_argument("--num_val", type=integer(0), default=200)
    p.add_argument("--seed", type=integer(0), default=0)
    p.add_argument("--image_size", type=integer(56, 4096), default=112, help="square side; a multiple of 28 keeps "
                   "the Qwen2.5-VL frame equal to the image")
    p.add_argument("--min_shapes", type=integer(1, MAX_SHAPES), default=1)
    p.add_argument("--max_shapes", type=integer(1, MAX_SHAPES), default=4)
    p.add_argument("--background", type=integer(0, 255), default=None, help="grey level of every background "
                   "(default: a random tinted grey per image)")
    p.add_argument("--solo", type=number(0, 1), default=0.0, help="share of images holding one large shape")
    p.add_argument("--queries_per_image", type=integer(1), default=2)
    p.add_argument("--terms", type=integer(2, MAX_TERMS), default=DEFAULT_TERMS)
    p.add_argument("--decimals", type=integer(0, MAX_DECIMALS), default=0,
                   help="rounding of the answer numbers (0: integers)")
    p.add_argument("--compact", action="store_true", help="answer JSON without spaces (fewer tokens)")
    p.add_argument("--workers", type=integer(1, 256), default=min(2, os.cpu_count() or 1),
                   help="contour-fitting processes")
    a = p.parse_args(argv)
    paths = generate(a.output_dir, a.num_train, a.num_val, a.seed, a.image_size, a.min_shapes, a.max_shapes,
                     a.background, a.solo, a.queries_per_image, a.terms, a.decimals, a.compact, a.workers)
    print(f"wrote {paths['train']} ({a.num_train} lines), {paths['val']} ({a.num_val} lines), images in "
          f"{os.path.join(a.output_dir, 'images')}")
    return paths
