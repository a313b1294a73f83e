"""Mask, box and Chebyshev-contour geometry, IoU and COCO AP (pure numpy/scipy/pycocotools; no torch, no I/O).

See ``masks.py`` for the pixel and orientation conventions, ``contours.py`` for the two answer
formats, ``contour_fit.py`` for fitting and the per-instance encoder.
"""

from .average_precision import coco_average_precision
from .boxes import box_area, box_iou_pairwise, is_valid_box, mask_to_bbox, xywh_to_xyxy, xyxy_to_xywh
from .contour_fit import (
    FITS,
    REPRESENTATIONS,
    encode_mask_rle,
    encode_mask_rles,
    fit_contour,
    fit_parametric,
    fit_radial,
)
from .contours import DEFAULT_TERMS, ParametricContour, RadialContour, contour_from_json
from .masks import (
    largest_component,
    mask_iou,
    mask_to_rle,
    outer_contour,
    polygon_to_mask,
    polygon_to_rle,
    rle_area,
    rle_iou,
    rle_to_mask,
    signed_area,
)

__all__ = [
    "DEFAULT_TERMS",
    "FITS",
    "REPRESENTATIONS",
    "ParametricContour",
    "RadialContour",
    "box_area",
    "box_iou_pairwise",
    "coco_average_precision",
    "contour_from_json",
    "encode_mask_rle",
    "encode_mask_rles",
    "fit_contour",
    "fit_parametric",
    "fit_radial",
    "is_valid_box",
    "largest_component",
    "mask_iou",
    "mask_to_bbox",
    "mask_to_rle",
    "outer_contour",
    "polygon_to_mask",
    "polygon_to_rle",
    "rle_area",
    "rle_iou",
    "rle_to_mask",
    "signed_area",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]
