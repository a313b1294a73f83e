"""Throughput of the COCO -> contour-jsonl conversion, and per-sample cost of the seg rewards.

Uses the 734 real predicted COCO masks in ``shared/data/coco-samples`` (replicated ``--repeat`` times). For each
representation and fit it runs the converter's own chunked, resumable path (:func:`vlmr1.data.coco.convert_records`:
fit, JSON, atomic parts, final concatenation, process-pool start-up included) with 1 and N workers, and times the
geometry alone (``encode_mask_rles`` over the same chunks) and the geometry of a baseline commit (default: the last
one before the batched fits, loaded beside the current code, one mask at a time as it was called then). Each row
gives masks/s (wall), masks per CPU-second, the mean ``fit_iou`` and the CPU-rate ratio to the baseline geometry.

Targets: the default (parametric, refined) >= 1,000 masks per CPU-second, so 2 idle cores convert >= 2,000
masks/s (COCO 2017's ~860k instances in ~7 minutes), at a mean fit_iou no lower than the baseline's.

    .venv/bin/python benchmarks/bench_coco_convert.py [--repeat 2] [--workers 2] [--representation all]
        [--baseline REV|none]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _baseline import DEFAULT_REV, load_geometry  # noqa: E402

from vlmr1.data.coco import DEFAULT_CHUNK, ConvertSettings, convert_records  # noqa: E402
from vlmr1.geometry import encode_mask_rle, encode_mask_rles  # noqa: E402

SHARED = Path("/work/shared/data/coco-samples")
if not SHARED.is_dir():
    SHARED = ROOT.parent / "shared" / "data" / "coco-samples"


def records(repeat: int) -> list[dict]:
    """Worker-ready records of the shared predicted masks (no images are needed to convert)."""
    masks = json.loads((SHARED / "val2014_predicted_masks_734.json").read_text())
    out = []
    for r in range(repeat):
        for k, m in enumerate(masks):
            h, w = m["segmentation"]["size"]
            ann_id = r * len(masks) + k
            out.append({"ann_id": ann_id, "image_id": m["image_id"], "image": f"val2014/{m['image_id']}.jpg",
                        "width": w, "height": h, "segmentation": m["segmentation"], "bbox": [0, 0, 1, 1],
                        "category": str(m["category_id"]), "questions": [{"id": ann_id, "text": "Outline it."}]})
    return out


def convert_rate(recs, settings, workers, chunk_size) -> tuple[float, float, float]:
    """(masks/s wall, masks per CPU-second of conversion work, mean fit_iou) of one conversion into a temp dir."""
    with tempfile.TemporaryDirectory() as tmp:
        stats = convert_records(recs, Path(tmp) / "out.jsonl", Path(tmp) / ".parts", settings, workers=workers,
                                chunk_size=chunk_size, progress=False)
    return stats["masks"] / stats["seconds"], stats["masks"] / stats["cpu_seconds"], stats["mean_fit_iou"]


def geometry_rate(recs, settings, chunk_size, encode=None) -> tuple[float, float, float]:
    """(masks/s wall, masks per CPU-second, mean fit_iou as the converter rounds it) of the geometry alone: the
    current batched encoder over converter-sized chunks, or ``encode`` (one mask at a time) when given."""
    args = (settings.representation, settings.terms, settings.fit, settings.decimals)
    start, cpu = time.perf_counter(), time.process_time()
    if encode is None:
        out = [r for i in range(0, len(recs), chunk_size)
               for r in encode_mask_rles([rec["segmentation"] for rec in recs[i : i + chunk_size]], *args)]
    else:
        out = [encode(rec["segmentation"], *args) for rec in recs]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return len(recs) / wall, len(recs) / cpu, sum(round(iou, 4) for _, iou in out) / len(out)


def reward_costs(recs, settings) -> tuple[float, float]:
    """Microseconds per sample of seg_iou and of the plain format reward (baseline), on perfect answers."""
    from vlmr1.rewards import get_reward_function

    rows = recs[:300]
    answers = []
    for rec in rows:
        answer, _ = encode_mask_rle(rec["segmentation"], settings.representation, settings.terms, "fast")
        answers.append("<think>t</think><answer>" + json.dumps(answer) + "</answer>")
    cols = {"mask": [r["segmentation"] for r in rows], "solution": answers,
            "original_sizes": [[[r["width"], r["height"]]] for r in rows],
            "frame_sizes": [[[r["width"], r["height"]]] for r in rows]}
    out = []
    for name in ("seg_iou", "format"):
        fn = get_reward_function(name)
        fn(completions=answers[:10], **{k: v[:10] for k, v in cols.items()})  # warm up imports and caches
        start = time.perf_counter()
        for _ in range(3):
            fn(completions=answers, **cols)
        out.append((time.perf_counter() - start) / (3 * len(answers)) * 1e6)
    return out[0], out[1]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=2, help="copies of the 734 masks")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--representation", default="all", choices=["all", "parametric", "radial"])
    p.add_argument("--chunk_size", type=int, default=DEFAULT_CHUNK, help="annotations per chunk (the converter's)")
    p.add_argument("--baseline", default=DEFAULT_REV, help="git commit of the baseline geometry, or 'none'")
    args = p.parse_args(argv)
    recs = records(args.repeat)
    base = None if args.baseline == "none" else load_geometry(args.baseline)
    print(f"{len(recs)} real COCO masks, 8 terms, chunk {args.chunk_size}, {os.cpu_count()} CPUs, "
          f"baseline {args.baseline if base else 'none'}\n")
    reps = ["parametric", "radial"] if args.representation == "all" else [args.representation]
    print(f"{'run':44s} {'masks/s':>8s} {'masks/CPU-s':>12s} {'vs baseline':>12s} {'mean fit_iou':>13s}")
    for rep in reps:
        for fit in ("fast", "refined"):
            s = ConvertSettings(rep, 8, fit, 1)
            rows = []
            if base is not None:
                rows.append((f"{rep} {fit}: baseline geometry", *geometry_rate(recs, s, 0, base.encode_mask_rle)))
            rows.append((f"{rep} {fit}: geometry", *geometry_rate(recs, s, args.chunk_size)))
            for workers in sorted({1, args.workers}):
                rows.append((f"{rep} {fit}: convert, {workers} worker(s)",
                             *convert_rate(recs, s, workers, args.chunk_size)))
            ref = rows[0][2] if base is not None else float("nan")
            for name, rate, per_cpu, iou in rows:
                print(f"{name:44s} {rate:8.0f} {per_cpu:12.0f} {per_cpu / ref:11.2f}x {iou:13.4f}", flush=True)
    print("masks/CPU-s: masks per CPU-second of conversion work summed over workers (pool start-up excluded); on N\n"
          "idle cores a run approaches N x that rate. masks/s is wall time, start-up included; it drops when other\n"
          f"jobs share the cores (load average now {os.getloadavg()[0]:.1f}).")
    seg, fmt = reward_costs(recs, ConvertSettings(reps[0]))
    print(f"\nseg_iou reward: {seg:.0f} us/sample = {seg / fmt:.1f}x the format reward ({fmt:.1f} us/sample)")
    print("targets: parametric refined >= 1000 masks/CPU-s (2 idle cores >= 2000 masks/s), fit_iou >= baseline's")


if __name__ == "__main__":
    main()
