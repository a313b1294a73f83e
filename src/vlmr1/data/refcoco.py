"""``vlmr1 data refcoco``: turn REFER annotations (RefCOCO, RefCOCO+, RefCOCOg) into the seed's jsonl.

Input is the standard REFER layout (https://github.com/lichengunc/refer): a folder holding ``refs(unc).p``
(RefCOCO, RefCOCO+), ``refs(umd).p`` or ``refs(google).p`` (RefCOCOg) and ``instances.json``; ``--refs`` may point at
that folder or at its parent (``data/`` with one sub-folder per dataset). Each ref has ``ref_id``, ``image_id``,
``ann_id``, ``split`` and ``sentences`` (``[{"sent": ...}, ...]``); ``instances.json`` has ``images`` (``id``,
``file_name``, ``width``, ``height``) and ``annotations`` (``id``, ``bbox`` as COCO ``[x, y, w, h]``).

Output: one jsonl per split, ``OUT/<name>_<split>.jsonl`` with ``<name>`` = ``refcoco``, ``refcocop`` (RefCOCO+) or
``refcocog`` (``refcocog_google`` for the google split), one line per (ref, sentence)::

    {"id": "refcoco-0-0", "image": "COCO_train2014_000000581857.jpg",
     "conversations": [{"from": "human", "value": "<image>the lady with the blue shirt"},
                       {"from": "gpt", "value": "[103.93, 299.99, 238.15, 477.41]"}],
     "bbox": [103.93, 299.99, 238.15, 477.41], "image_id": 581857, "ref_id": 0}

``image`` is the COCO ``file_name``, relative to ``--images`` (e.g. ``train2014/``): pass that folder as
``--image_folders`` when training. ``bbox`` and the answer are ``[x1, y1, x2, y2]`` in original pixels; the REC
rewards map the model's answer into original pixels, so the data never depends on the model family.
Files are written atomically (:mod:`vlmr1.fileio`).
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
from collections.abc import Sequence
from typing import Any

from vlmr1.arguments import CommandParser
from vlmr1.errors import UserError
from vlmr1.fileio import write_jsonl
from vlmr1.geometry.boxes import xywh_to_xyxy

DEFAULT_SPLIT_BY = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}
FILE_PREFIX = {"refcoco": "refcoco", "refcoco+": "refcocop", "refcocog": "refcocog"}
# Pickles can name any importable callable and the unpickler calls it. REFER refs are plain lists/dicts/strings,
# so only these builtin containers may be named (protocol-2 pickles spell sets as "__builtin__.set"); anything
# else in a downloaded file is refused instead of executed.
_SAFE_BUILTINS = frozenset({"dict", "list", "tuple", "set", "frozenset"})


class _ContainersOnlyUnpickler(pickle.Unpickler):
    """An unpickler that constructs builtin containers only and refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return getattr(builtins, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: REFER refs hold plain containers only")


def load_refs(path: str) -> list[dict[str, Any]]:
    """Read a REFER ``refs(*).p`` pickle without running code from it.

    Args:
        path: The pickle file (Python 2 pickles from the original release included).

    Returns:
        The list of refs.

    Raises:
        ValueError: The file names a non-container global (possibly malicious) or is not a list of refs.
    """
    with open(path, "rb") as f:
        try:
            # Python 2 ``str`` objects arrive as bytes; decode them as UTF-8 rather than fail on one odd sentence.
            refs = _ContainersOnlyUnpickler(f, encoding="utf-8", errors="replace").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as e:
            raise ValueError(f"{path}: not a REFER refs pickle ({e})") from None
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise ValueError(f"{path}: expected a list of refs (dicts), got {type(refs).__name__}")
    return refs


def find_refer_files(refs_dir: str, dataset: str, split_by: str) -> tuple[str, str]:
    """Locate ``refs(<split_by>).p`` and ``instances.json`` in ``refs_dir`` or ``refs_dir/<dataset>``.

    Args:
        refs_dir: ``--refs``.
        dataset: ``refcoco``, ``refcoco+`` or ``refcocog``.
        split_by: ``unc``, ``umd`` or ``google``.

    Returns:
        ``(refs_pickle, instances_json)`` paths.

    Raises:
        FileNotFoundError: Naming both places looked in.
    """
    name = f"refs({split_by}).p"
    for folder in (refs_dir, os.path.join(refs_dir, dataset)):
        refs, instances = os.path.join(folder, name), os.path.join(folder, "instances.json")
        if os.path.isfile(refs) and os.path.isfile(instances):
            return refs, instances
    raise FileNotFoundError(f"no {name} + instances.json in {refs_dir} or {os.path.join(refs_dir, dataset)}")


def _xyxy(bbox: Sequence[float]) -> list[float]:
    return [round(v, 2) for v in xywh_to_xyxy([float(v) for v in bbox]).tolist()]


def convert_refs(refs: Sequence[dict[str, Any]], instances: dict[str, Any], prefix: str) -> dict[str, list[dict]]:
    """Build the jsonl rows of every split.

    Args:
        refs: From :func:`load_refs`.
        instances: Parsed ``instances.json``.
        prefix: Output name, used in row ids.

    Returns:
        ``{split: [row, ...]}`` in the refs' order, one row per (ref, non-empty sentence).

    Raises:
        ValueError: A ref points at an image or annotation missing from ``instances.json``.
    """
    images = {img["id"]: img for img in instances.get("images", [])}
    boxes = {ann["id"]: ann["bbox"] for ann in instances.get("annotations", [])}
    by_split: dict[str, list[dict]] = {}
    for ref in refs:
        ref_id, image_id, ann_id = ref.get("ref_id"), ref.get("image_id"), ref.get("ann_id")
        if image_id not in images or ann_id not in boxes:
            raise ValueError(f"ref {ref_id}: image_id {image_id} or ann_id {ann_id} is not in instances.json "
                             "(refs and instances.json from different datasets?)")
        bbox = _xyxy(boxes[ann_id])
        for k, sentence in enumerate(ref.get("sentences", [])):
            text = str(sentence.get("sent") or sentence.get("raw") or "").strip()
            if not text:
                continue
            by_split.setdefault(str(ref.get("split")), []).append({
                "id": f"{prefix}-{ref_id}-{sentence.get('sent_id', k)}",
                "image": images[image_id]["file_name"],
                "conversations": [{"from": "human", "value": "<image>" + text},
                                  {"from": "gpt", "value": json.dumps(bbox)}],
                "bbox": bbox,
                "image_id": image_id,
                "ref_id": ref_id,
            })
    return by_split


def build_parser() -> CommandParser:
    """The ``vlmr1 data refcoco`` argument parser."""
    parser = CommandParser(prog="vlmr1 data refcoco",
                           description="Convert REFER annotations (RefCOCO/+/g) to vlmr1 jsonl, one file per split.")
    parser.add_argument("--refs", required=True, help="folder with refs(unc|umd|google).p and instances.json "
                                                      "(or its parent holding one folder per dataset)")
    parser.add_argument("--images", required=True, help="COCO image folder (e.g. train2014/); 'image' paths are "
                                                        "relative to it")
    parser.add_argument("--output_dir", required=True, help="where <name>_<split>.jsonl files are written")
    parser.add_argument("--dataset", default="refcoco", choices=sorted(DEFAULT_SPLIT_BY))
    parser.add_argument("--split_by", default=None, choices=["unc", "umd", "google"],
                        help="annotation release (default: unc for refcoco/refcoco+, umd for refcocog)")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, int]:
    """Run ``vlmr1 data refcoco``.

    Args:
        argv: Command-line arguments (without the subcommand).

    Returns:
        ``{output_path: number_of_lines}``.
    """
    args = build_parser().parse_args(argv)
    split_by = args.split_by or DEFAULT_SPLIT_BY[args.dataset]
    prefix = FILE_PREFIX[args.dataset] + ("" if split_by == DEFAULT_SPLIT_BY[args.dataset] else f"_{split_by}")
    try:
        refs_path, instances_path = find_refer_files(args.refs, args.dataset, split_by)
        refs = load_refs(refs_path)
        with open(instances_path, encoding="utf-8-sig") as f:
            instances = json.load(f)
        by_split = convert_refs(refs, instances, prefix)
    except (OSError, ValueError) as e:  # missing files, a foreign pickle, bad JSON, refs of another dataset
        raise UserError(str(e), where=args.refs, kind="bad_refer_data",
                        fix="--refs is the folder holding refs(...).p and instances.json of one REFER dataset") from e
    written: dict[str, int] = {}
    missing: set[str] = set()
    for split, rows in by_split.items():
        missing.update(r["image"] for r in rows if not os.path.isfile(os.path.join(args.images, r["image"])))
        path = os.path.join(args.output_dir, f"{prefix}_{split}.jsonl")
        written[path] = write_jsonl(path, rows)
        print(f"wrote {written[path]} lines to {path}")
    if missing:
        print(f"warning: {len(missing)} referenced image(s) are not in {args.images}, e.g. {sorted(missing)[0]}")
    return written
