"""``vlmr1 data coco``: COCO instance masks -> "segmentation as text" jsonl (Chebyshev contour answers).

Layout of ``--output_dir DIR`` (downloaded, or already there with ``--no-download``)::

    DIR/{train,val}{year}/*.jpg                      images (from {split}{year}.zip)
    DIR/annotations/instances_{split}{year}.json     COCO instances (from annotations_trainval{year}.zip)
    DIR/refcoco/refs(unc).p                          optional, for --refs refcoco (refcoco+, refcocog likewise)
    DIR/train.jsonl, DIR/val.jsonl                   the output

Every non-crowd instance of a thing category becomes one line (one per referring expression with ``--refs``)::

    {"id": 2096753, "image": "val2017/000000142238.jpg",
     "conversations": [{"from": "human", "value": "<image>Outline the person."},
                       {"from": "gpt", "value": "<answer>{\"x\": [c0, ..., c7], \"y\": [c0, ..., c7]}</answer>"}],
     "mask": {"size": [H, W], "counts": "<COCO compressed RLE>"}, "bbox": [x1, y1, x2, y2],
     "category": "person", "fit_iou": 0.9312, "ann_id": 2096753, "image_id": 142238}

The answer is in pixels of the original image, coefficients rounded to 0.1 px (``--decimals``; on real COCO masks
this costs < 0.001 mean IoU, integers would cost ~0.03); ``fit_iou`` is the IoU of that *rounded* answer with
``mask``. ``bbox`` is ``[x1, y1, x2, y2]`` in original pixels (COCO's xywh converted), as the REC rewards read it.
With ``--refs``, lines of referred objects carry the expression, ``ref_id`` and ``ref_split``.

Conversion runs in a process pool over chunks of annotations. Each finished chunk is written atomically to
``DIR/.parts/<split>/<settings hash>/<chunk>.jsonl``; the parts are then concatenated into a temp file that is
renamed to ``DIR/<split>.jsonl``. A killed run redoes only the missing chunks and the result is byte-identical
to an uninterrupted run's; a rerun with the same settings and inputs is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from vlmr1.arguments import CommandParser, integer
from vlmr1.data import coco_checks as checks
from vlmr1.data.coco_checks import annotation_rle  # noqa: F401 - part of this module's API
from vlmr1.data.download import BASE_URL, ensure_coco
from vlmr1.errors import UserError
from vlmr1.fileio import atomic_open, atomic_write
from vlmr1.geometry.contours import MAX_TERMS
from vlmr1.workers import die_with_parent

FORMAT_VERSION = 1
DEFAULT_CHUNK = 500
MAX_DECIMALS = 6  # negative decimals round every coefficient to 0; beyond 1e-6 px the digits are noise
REF_EVAL_SPLITS = ("val", "test", "testA", "testB", "testC")
REFS_FILES = {"refcoco": ("refs(unc).p", "refs(google).p"), "refcoco+": ("refs(unc).p",),
              "refcocog": ("refs(umd).p", "refs(google).p")}


@dataclass(frozen=True)
class ConvertSettings:
    """How masks become answers (all of it goes into the resume fingerprint)."""

    representation: str = "parametric"
    terms: int = 8
    fit: str = "refined"
    decimals: int = 1


# ---------------------------------------------------------------- per-annotation conversion (runs in workers)

def _answer_text(answer: dict) -> str:
    clean = {k: [v + 0.0 for v in vals] for k, vals in answer.items()}  # + 0.0 turns -0.0 into 0.0
    return "<answer>" + json.dumps(clean) + "</answer>"


def convert_batch(records: list[dict], settings: ConvertSettings) -> list[list[dict] | Exception]:
    """The jsonl lines of prepared annotation records (see :func:`prepare_records`), their masks fitted as one batch
    (several times faster per mask than one at a time).

    Returns:
        Per record, its lines or the exception that made it unusable (an ``AnnotationProblem`` says its kind).
    """
    from vlmr1.geometry import encode_mask_rles

    out: list = [None] * len(records)
    masks = {}
    for k, rec in enumerate(records):
        try:
            masks[k] = checks.checked_mask(rec)
        except Exception as e:  # noqa: BLE001 - whatever one annotation does stays that annotation's
            out[k] = e
    # fitted against the mask exactly as written to the line
    fits = encode_mask_rles(list(masks.values()), settings.representation, settings.terms, settings.fit,
                            settings.decimals)
    for (k, mask), fitted in zip(masks.items(), fits):
        if isinstance(fitted, ValueError):
            out[k] = checks.AnnotationProblem("fit_failed", str(fitted))
            continue
        try:
            out[k] = _record_lines(records[k], mask, *fitted)
        except Exception as e:  # noqa: BLE001
            out[k] = e
    return out


def _record_lines(rec: dict, mask: dict, answer: dict, iou: float) -> list[dict]:
    from vlmr1.geometry import xywh_to_xyxy

    common = {"mask": mask, "bbox": [round(v, 2) for v in xywh_to_xyxy(checks.annotation_box(rec["bbox"])).tolist()],
              "category": rec["category"], "fit_iou": round(float(iou), 4),
              "ann_id": rec["ann_id"], "image_id": rec["image_id"]}
    lines = []
    for q in rec["questions"]:
        line = {"id": q["id"], "image": rec["image"],
                "conversations": [{"from": "human", "value": "<image>" + q["text"]},
                                  {"from": "gpt", "value": _answer_text(answer)}]}
        line.update(common)
        line.update(q.get("extra", {}))
        lines.append(line)
    return lines


def convert_chunk(job: tuple[list[dict], ConvertSettings, str]) -> tuple[int, int, float, dict, float]:
    """Convert one chunk and write its part file atomically; one bad annotation never stops the others.

    Returns:
        (masks, lines, sum of fit_iou, failures ``{kind: [count, [first annotation ids]]}``, CPU seconds spent).
    """
    records, settings, part_path = job
    cpu = time.process_time()
    out, masks, iou_sum, failures = [], 0, 0.0, {}
    for rec, lines in zip(records, convert_batch(records, settings)):
        if isinstance(lines, Exception):
            kind = lines.kind if isinstance(lines, checks.AnnotationProblem) else f"error_{type(lines).__name__}"
            checks.add_failure(failures, kind, rec.get("ann_id"))
            continue
        masks += 1
        iou_sum += lines[0]["fit_iou"] if lines else 0.0
        out.extend(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    atomic_write(part_path, "".join(out))
    return masks, len(out), iou_sum, failures, time.process_time() - cpu


# ---------------------------------------------------------------- records, refs, resumable driver

def load_refs(path: str | os.PathLike) -> list[dict]:
    """Read a refer-style pickle (``refs(unc).p``) with an unpickler that refuses every class (data only)."""

    class DataOnly(pickle.Unpickler):
        def find_class(self, module, name):
            raise pickle.UnpicklingError(f"{path}: refers to {module}.{name}; a refs file holds only lists, dicts, "
                                         "strings and numbers - refusing to load it (re-download it from the refer "
                                         "project)")

    with open(path, "rb") as f:
        refs = DataOnly(f, encoding="utf-8", errors="replace").load()
    if not isinstance(refs, list) or not all(isinstance(r, dict) and {"ann_id", "image_id", "split", "sentences"}
                                             <= r.keys() for r in refs):
        raise ValueError(f"{path}: expected a list of refs with ann_id, image_id, split and sentences; "
                         "is this a refer 'refs(...).p' file?")
    return refs


def find_refs(root: Path, name: str) -> Path | None:
    """``root/<name>/refs(<splitBy>).p`` (unc for refcoco/refcoco+, umd for refcocog, else google), or None."""
    for filename in REFS_FILES[name]:
        if (root / name / filename).is_file():
            return root / name / filename
    return None


def prepare_records(instances: dict, image_dir: str, refs: list[dict] | None = None, refs_only: bool = False,
                    exclude_images: set[int] | frozenset = frozenset()) -> tuple[list[dict], dict[str, int]]:
    """Worker-ready records of a COCO instances dict, in file order, plus counts of what was skipped.

    Args:
        instances: the parsed ``instances_*.json``.
        image_dir: the images' folder relative to the output dir (e.g. ``"val2017"``).
        refs: refer records; referred annotations get one question per expression.
        refs_only: keep only annotations that have an expression.
        exclude_images: image ids to leave out (RefCOCO eval images).
    """
    images = {im.get("id"): im for im in instances["images"] if isinstance(im, dict)}
    cats = {c.get("id"): c for c in instances["categories"] if isinstance(c, dict)}
    by_ann: dict[int, list[dict]] = {}
    for ref in refs or ():
        for k, sent in enumerate(ref["sentences"]):
            text = str(sent.get("sent", "") if isinstance(sent, dict) else sent).strip()
            if text:
                by_ann.setdefault(ref["ann_id"], []).append(
                    {"id": f"{ref['ann_id']}_{ref.get('ref_id', 0)}_{k}",
                     "text": f'Outline the object described as "{text}".',
                     "extra": {"ref_id": ref.get("ref_id"), "ref_split": ref["split"]}})
    skipped = dict.fromkeys(("crowd", "not_thing", "no_expression", "excluded_image", "unknown_image",
                             "bad_annotation"), 0)
    records = []
    for ann in instances["annotations"]:
        if not isinstance(ann, dict) or "id" not in ann:
            skipped["bad_annotation"] += 1  # not an object with an id: nothing to name it by
            continue
        cat = cats.get(ann.get("category_id"), {})
        if ann.get("iscrowd", 0):
            skipped["crowd"] += 1
        elif not cat or not checks.is_thing(cat):
            skipped["not_thing"] += 1  # panoptic-style files list stuff categories too
        elif ann.get("image_id") not in images:
            skipped["unknown_image"] += 1
        elif ann["image_id"] in exclude_images:
            skipped["excluded_image"] += 1
        elif refs_only and ann["id"] not in by_ann:
            skipped["no_expression"] += 1
        else:
            im = images[ann["image_id"]]
            questions = by_ann.get(ann["id"]) or [{"id": ann["id"], "text": f"Outline the {cat.get('name')}."}]
            records.append({"ann_id": ann["id"], "image_id": ann["image_id"],
                            "image": f"{image_dir}/{im.get('file_name')}", "width": im.get("width"),
                            "height": im.get("height"), "segmentation": ann.get("segmentation"),
                            "bbox": ann.get("bbox"), "category": cat.get("name"), "questions": questions})
    return records, skipped


def fingerprint(*parts) -> str:
    """Short hash of the settings and input identities that decide a split's output bytes."""
    return hashlib.sha1(json.dumps([FORMAT_VERSION, *parts], sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_id(path: Path | None) -> list | None:
    if path is None:
        return None
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def convert_records(records: list[dict], out_path: Path, parts_root: Path, settings: ConvertSettings, *,
                    workers: int = 1, chunk_size: int = DEFAULT_CHUNK, key: str = "", progress: bool = True) -> dict:
    """Convert records to ``out_path`` through resumable, atomic per-chunk parts.

    Args:
        records: from :func:`prepare_records`.
        out_path: the final jsonl (replaced atomically at the end).
        parts_root: ``DIR/.parts/<split>``; parts of other settings found there are removed.
        settings: the conversion settings.
        workers: processes (1 = in this process).
        chunk_size: annotations per part file.
        key: fingerprint of the inputs; chunk boundaries and settings are added to it.

    Returns:
        Stats: masks, lines, mean_fit_iou, failed (``{kind: [count, [first annotation ids]]}``), cpu_seconds
        (conversion CPU time summed over workers; all for this run's chunks only), resumed_chunks, chunks, seconds
        (wall).

    Raises:
        UserError: ``nothing_converted`` when no annotation became a line (``out_path`` is left as it was).
    """
    start = time.perf_counter()
    fp = fingerprint(key, asdict(settings), chunk_size, len(records))
    parts_dir = parts_root / fp
    if parts_root.is_dir():
        for stale in parts_root.iterdir():
            if stale.is_dir() and stale.name != fp:
                shutil.rmtree(stale, ignore_errors=True)
    parts_dir.mkdir(parents=True, exist_ok=True)
    chunks = [records[i : i + chunk_size] for i in range(0, len(records), chunk_size)]
    paths = [parts_dir / f"{k:06d}.jsonl" for k in range(len(chunks))]
    todo = [k for k, p in enumerate(paths) if not p.is_file()]
    stats = {"masks": 0, "lines": 0, "iou_sum": 0.0, "failed": {}, "cpu_seconds": 0.0, "chunks": len(chunks),
             "resumed_chunks": len(chunks) - len(todo)}
    bar = tqdm(total=sum(len(chunks[k]) for k in todo), unit="mask", desc=out_path.name, disable=not progress)

    def account(k, result):
        for name, value in zip(("masks", "lines", "iou_sum", "cpu_seconds"), result[:3] + result[4:]):
            stats[name] += value
        checks.merge_failures(stats["failed"], result[3])
        bar.update(len(chunks[k]))

    if workers <= 1:
        for k in todo:
            account(k, convert_chunk((chunks[k], settings, str(paths[k]))))
    else:
        # forkserver: workers fork from a clean single-threaded server that imported the geometry once (a fork of
        # this process could inherit threads from tqdm or torch; spawn would re-import numpy/scipy per worker).
        # The bounded in-flight window keeps memory flat.
        # Workers end with this process (a kill -9 of it would otherwise leave them, the forkserver and the resource
        # tracker behind).
        ctx = get_context("forkserver")
        ctx.set_forkserver_preload(["vlmr1.data.coco", "vlmr1.geometry"])
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            pending, queue = {}, list(todo)
            while queue or pending:
                while queue and len(pending) < 2 * workers:
                    k = queue.pop(0)
                    pending[pool.submit(convert_chunk, (chunks[k], settings, str(paths[k])))] = k
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    account(pending.pop(fut), fut.result())
    bar.close()
    if records and not any(p.stat().st_size for p in paths):  # never replace a good file with an empty one
        failed = checks.describe_failures(stats["failed"])
        raise UserError(f"none of {len(records)} annotation(s) became a line ({failed}); {out_path.name} was left as "
                        "it was", where=str(out_path), kind="nothing_converted",
                        fix="check the annotations file and the --terms/--decimals/--representation settings")
    for leftover in out_path.parent.glob(f".{out_path.name}.*.tmp"):  # a run killed while concatenating
        leftover.unlink(missing_ok=True)
    with atomic_open(out_path) as out:
        for p in paths:
            with open(p, "rb") as part:
                shutil.copyfileobj(part, out, 1 << 20)
    atomic_write(parts_root / "done.json", json.dumps({"fingerprint": fp, "size": out_path.stat().st_size}))
    shutil.rmtree(parts_dir, ignore_errors=True)  # the final file holds everything now
    stats["mean_fit_iou"] = stats.pop("iou_sum") / stats["masks"] if stats["masks"] else float("nan")
    stats["seconds"] = time.perf_counter() - start
    stats["fingerprint"] = fp
    return stats


def is_done(out_path: Path, parts_root: Path, key: str, settings: ConvertSettings, chunk_size: int,
            n_records: int) -> bool:
    """True when ``out_path`` was completed by a run with the same inputs and settings."""
    try:
        done = json.loads((parts_root / "done.json").read_text())
    except (OSError, ValueError):
        return False
    fp = fingerprint(key, asdict(settings), chunk_size, n_records)
    return done.get("fingerprint") == fp and out_path.is_file() and out_path.stat().st_size == done.get("size")


def _missing_images(root: Path, records: list[dict]) -> list[str]:
    seen = {r["image"] for r in records}
    return sorted(p for p in seen if not (root / p).is_file())


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """``vlmr1 data coco``: download (or reuse) COCO and write ``DIR/<split>.jsonl``. Returns stats per split."""
    p = CommandParser(prog="vlmr1 data coco", description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", "--output-dir", required=True, help="data folder (images, annotations, output)")
    p.add_argument("--year", default="2017", choices=["2014", "2017"])
    p.add_argument("--splits", default="train,val", help="comma-separated COCO splits: train,val")
    p.add_argument("--representation", default="parametric", choices=["parametric", "radial"])
    p.add_argument("--terms", type=integer(2, MAX_TERMS), default=8, help="Chebyshev coefficients per coordinate")
    p.add_argument("--fit", default="refined", choices=["refined", "fast"],
                   help="refined: IoU-optimised (default); fast: least squares, ~2x faster")
    p.add_argument("--decimals", type=integer(0, MAX_DECIMALS), default=1,
                   help="rounding of the answer numbers (1: 0.1 px)")
    p.add_argument("--workers", type=integer(1, 1024), default=os.cpu_count() or 1, help="conversion processes")
    p.add_argument("--chunk_size", type=integer(1), default=DEFAULT_CHUNK, help="annotations per resumable part")
    p.add_argument("--no-download", "--no_download", dest="download", action="store_false",
                   help="use only zips or folders already in --output_dir")
    p.add_argument("--base_url", default=BASE_URL, help="mirror of images.cocodataset.org")
    p.add_argument("--delete_zips", action="store_true", help="remove each zip once extracted")
    p.add_argument("--refs", choices=sorted(REFS_FILES), help="use expressions from DIR/<refs>/refs(...).p")
    p.add_argument("--refs_only", action="store_true", help="with --refs: keep only referred objects")
    p.add_argument("--exclude_ref_eval_images", action="store_true",
                   help="with --refs: drop train images that appear in the refs' val/test splits")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    if not splits or any(s not in ("train", "val") for s in splits):
        p.error(f"--splits must list train and/or val, got {args.splits!r}")
    settings = ConvertSettings(args.representation, args.terms, args.fit, args.decimals)
    root = Path(args.output_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)

    refs, refs_path, eval_images = None, None, set()
    if args.refs:
        refs_path = find_refs(root, args.refs)
        if refs_path is None:
            raise UserError(f"none of {REFS_FILES[args.refs]} in {root / args.refs}", where=f"--refs {args.refs}",
                            kind="missing_file", fix="download the refer annotations (refcoco.zip etc.) and extract "
                                                     f"them into {root}")
        refs = load_refs(refs_path)
        eval_images = {r["image_id"] for r in refs if r["split"] in REF_EVAL_SPLITS}
        print(f"{refs_path}: {len(refs)} refs")
    ann_paths = ensure_coco(root, args.year, splits, args.download, args.base_url, args.delete_zips)

    results = {}
    for split in splits:
        ann_path = ann_paths[split]
        instances = checks.read_instances(ann_path)
        exclude = eval_images if (split == "train" and args.exclude_ref_eval_images) else set()
        records, skipped = prepare_records(instances, f"{split}{args.year}", refs, args.refs_only, exclude)
        del instances
        if not records:  # an existing {split}.jsonl is kept rather than replaced by an empty one
            raise UserError(f"no annotation to convert (skipped: {skipped})", where=str(ann_path),
                            kind="nothing_converted", fix="is this an instances file? (stuff-only and crowd "
                                                          "annotations are skipped)")
        if split == "train" and refs is not None:
            overlap = len({r["image_id"] for r in records} & eval_images)
            if overlap:
                print(f"WARNING: {overlap} {split}{args.year} images of {split}.jsonl also appear in {args.refs} "
                      f"val/test splits ({refs_path.name}); a model trained on {split}.jsonl has seen them. Rerun "
                      "with --exclude_ref_eval_images before evaluating on RefCOCO val/testA/testB.",
                      file=sys.stderr)
        missing = _missing_images(root, records)
        if missing:
            raise UserError(f"{len(missing)} image(s) it references are missing under {root}, e.g. {missing[:3]}",
                            where=str(ann_path), kind="missing_image",
                            fix=f"delete {root / f'.{split}{args.year}.zip.extracted'} and rerun to re-extract, or "
                                "fix the folder")
        out_path = root / f"{split}.jsonl"
        parts_root = root / ".parts" / split
        key = fingerprint(_file_id(ann_path), _file_id(refs_path), args.refs_only, sorted(exclude), args.year)
        if is_done(out_path, parts_root, key, settings, args.chunk_size, len(records)):
            print(f"{out_path} is up to date ({len(records)} masks); nothing to do")
            results[split] = {"masks": len(records), "up_to_date": True}
            continue
        stats = convert_records(records, out_path, parts_root, settings, workers=args.workers,
                                chunk_size=args.chunk_size, key=key, progress=not args.quiet)
        stats["skipped"] = skipped
        rate = stats["masks"] / stats["seconds"] if stats["seconds"] > 0 else float("nan")
        print(f"wrote {out_path}: {stats['lines']} lines from {stats['masks']} masks in {stats['seconds']:.1f} s "
              f"({rate:.0f} masks/s, {stats['resumed_chunks']}/{stats['chunks']} chunks resumed); mean fit_iou "
              f"{stats['mean_fit_iou']:.3f}; skipped {skipped}; failed: {checks.describe_failures(stats['failed'])}")
        results[split] = stats
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
