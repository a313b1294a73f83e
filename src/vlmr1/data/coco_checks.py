"""What ``vlmr1 data coco`` checks of each annotation, and how it counts the ones it leaves out.

One bad annotation (no segmentation, a broken polygon or RLE, an RLE of another size than its image, a missing bbox)
is counted by kind with its first ids and never stops the others (:class:`AnnotationProblem`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vlmr1.errors import UserError


class AnnotationProblem(ValueError):
    """One annotation that cannot become a line; ``kind`` sorts it in the converter's summary."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def annotation_rle(segmentation, height: int, width: int) -> dict:
    """A COCO ``segmentation`` (polygons, uncompressed or compressed RLE) as one pycocotools RLE (bytes counts), of the
    image's size.

    Raises:
        AnnotationProblem: no segmentation, a polygon or RLE that does not describe a mask, or an RLE whose size is not
            the image's (``size_mismatch``: its pixels would not line up with the image).
    """
    from pycocotools import mask as mask_utils

    from vlmr1.geometry.masks import _as_rle

    if segmentation is None or segmentation == [] or segmentation == {}:
        raise AnnotationProblem("no_segmentation", "the annotation has no segmentation")
    if isinstance(segmentation, list):  # polygons: rasterise each, then union
        try:
            polys = [[float(v) for v in p] for p in segmentation if isinstance(p, list) and len(p) >= 6]
        except (TypeError, ValueError):
            raise AnnotationProblem("bad_polygon", "a polygon holds something other than numbers") from None
        if not polys or not all(np.isfinite(p).all() for p in polys):
            raise AnnotationProblem("bad_polygon", "no polygon with 3 or more finite points")
        return mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise AnnotationProblem("bad_rle", f"unsupported segmentation of type {type(segmentation).__name__}")
    try:
        rle = _as_rle(segmentation)  # checks that the counts describe the stated size (pycocotools trusts them)
    except ValueError as e:
        raise AnnotationProblem("bad_rle", str(e)) from None
    if list(rle["size"]) != [height, width]:
        raise AnnotationProblem("size_mismatch", f"RLE size {list(rle['size'])} is not the image's [H, W] "
                                                 f"{[height, width]}")
    return rle


def annotation_box(bbox) -> list[float]:
    """A COCO ``[x, y, w, h]`` box as floats.

    Raises:
        AnnotationProblem: ``bad_bbox`` for anything but four finite numbers with w, h >= 0.
    """
    try:
        xywh = [float(v) for v in bbox]
    except (TypeError, ValueError):
        xywh = []
    if len(xywh) != 4 or not np.isfinite(xywh).all() or min(xywh[2:]) < 0:
        raise AnnotationProblem("bad_bbox", f"bbox must be [x, y, w, h] with w, h >= 0, got {json.dumps(bbox)[:60]}")
    return xywh


def is_thing(category: dict) -> bool:
    """Whether a category is a thing (an object with instances): its ``isthing`` where given (panoptic files), else
    COCO's numbering: things are ids 1-90, stuff (sky, wall, ...) starts at 92."""
    flag = category.get("isthing")
    if flag is None:
        return isinstance(category.get("id"), int) and category["id"] <= 90
    return str(flag).strip().lower() not in ("0", "false", "no", "")


FIRST_IDS = 5  # annotation ids listed per kind of failure


def add_failure(failures: dict[str, list], kind: str, ann_id, count: int = 1) -> None:
    """Count one failure of ``kind`` in ``failures`` (``{kind: [count, [first ids]]}``)."""
    entry = failures.setdefault(kind, [0, []])
    entry[0] += count
    if ann_id is not None and len(entry[1]) < FIRST_IDS:
        entry[1].append(ann_id)


def merge_failures(into: dict[str, list], more: dict[str, list]) -> None:
    for kind, (count, ids) in more.items():
        entry = into.setdefault(kind, [0, []])
        entry[0] += count
        entry[1].extend(ids[: FIRST_IDS - len(entry[1])])


def describe_failures(failures: dict[str, list]) -> str:
    """``"bad_rle 3 (ids 5, 9, 12), empty_mask 1 (id 7)"``, or ``"none"``."""
    parts = []
    for kind, (count, ids) in sorted(failures.items()):
        shown = ", ".join(map(str, ids)) + (", ..." if count > len(ids) else "")
        parts.append(f"{kind} {count}" + (f" (id{'s' if len(ids) > 1 else ''} {shown})" if ids else ""))
    return ", ".join(parts) or "none"


def read_instances(path: Path) -> dict:
    """A COCO instances file (a BOM is fine); bad JSON or another kind of file is a ``bad_json`` error."""
    fix = "delete it and rerun to extract it again"
    try:
        instances = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as e:
        raise UserError(f"not valid JSON ({e})", where=str(path), kind="bad_json", fix=fix) from None
    if not isinstance(instances, dict) or not all(isinstance(instances.get(k), list)
                                                  for k in ("images", "annotations", "categories")):
        raise UserError("not a COCO instances file (it needs lists 'images', 'annotations' and 'categories')",
                        where=str(path), kind="bad_json", fix=fix)
    return instances


def checked_mask(rec: dict) -> dict:
    """The record's mask as its line stores it (``{"size", "counts": str}``), the image size, box and segmentation
    checked first.

    Raises:
        AnnotationProblem: the annotation cannot become a line (its kind says why).
    """
    from pycocotools import mask as mask_utils

    height, width = rec["height"], rec["width"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (height, width)):
        raise AnnotationProblem("bad_image_size", f"the image's height and width are {height!r}, {width!r}")
    annotation_box(rec["bbox"])
    rle = annotation_rle(rec["segmentation"], height, width)
    if int(mask_utils.area(rle)) == 0:
        raise AnnotationProblem("empty_mask", "the mask has no pixel")
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
