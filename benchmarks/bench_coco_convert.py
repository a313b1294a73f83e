"""Throughput of the COCO -> contour-jsonl conversion, and per-sample cost of the seg rewards.

Uses the 734 real predicted COCO masks in ``shared/data/coco-samples`` (replicated ``--repeat`` times), runs the
converter's own chunked, resumable path (:func:`vlmr1.data.coco.convert_records`: fit, JSON, atomic parts, final
concatenation, process-pool start-up included) for both fits with 1 and N workers, and prints masks/s with ratios
against a baseline measured in the same run (fast fit, 1 worker). The "geometry only" rows time
``encode_mask_rle`` alone, so the converter's overhead is visible. Targets (2 cores): >= 400 masks/s refined,
>= 2,000 masks/s fast.

    .venv/bin/python benchmarks/bench_coco_convert.py [--repeat 4] [--workers 2] [--representation parametric]
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

from vlmr1.data.coco import ConvertSettings, convert_records  # noqa: E402
from vlmr1.geometry import encode_mask_rle  # noqa: E402

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


def geometry_rate(recs, settings) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    for rec in recs:
        encode_mask_rle(rec["segmentation"], settings.representation, settings.terms, settings.fit,
                        settings.decimals)
    return len(recs) / (time.perf_counter() - start), len(recs) / (time.process_time() - cpu)


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
    p.add_argument("--repeat", type=int, default=4, help="copies of the 734 masks")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--representation", default="parametric", choices=["parametric", "radial"])
    p.add_argument("--chunk_size", type=int, default=100)
    args = p.parse_args(argv)
    recs = records(args.repeat)
    print(f"{len(recs)} real COCO masks, {args.representation}, 8 terms, chunk {args.chunk_size}, "
          f"{os.cpu_count()} CPUs\n")
    rows = []
    for fit in ("fast", "refined"):
        s = ConvertSettings(args.representation, 8, fit, 1)
        rows.append((f"geometry only, {fit}, 1 process", *geometry_rate(recs, s), None))
        for workers in sorted({1, args.workers}):
            rows.append((f"convert, {fit}, {workers} worker(s)", *convert_rate(recs, s, workers, args.chunk_size)))
    base = next(rate for name, rate, _, _ in rows if name == "convert, fast, 1 worker(s)")
    print(f"{'run':36s} {'masks/s':>9s} {'vs baseline':>12s} {'masks/CPU-s':>12s} {'mean fit_iou':>13s}")
    for name, rate, per_cpu, iou in rows:
        print(f"{name:36s} {rate:9.0f} {rate / base:11.2f}x {per_cpu:12.0f} {'' if iou is None else f'{iou:13.4f}'}")
    print("masks/CPU-s: masks per CPU-second of conversion work summed over workers (pool start-up excluded); on N\n"
          "idle cores a run approaches N x that rate. masks/s is wall time, start-up included; it drops when other\n"
          "jobs share the cores.")
    seg, fmt = reward_costs(recs, ConvertSettings(args.representation))
    print(f"\nseg_iou reward: {seg:.0f} us/sample = {seg / fmt:.1f}x the format reward ({fmt:.1f} us/sample)")
    print("baseline = convert, fast, 1 worker (same run); targets on 2 cores: refined >= 400/s, fast >= 2000/s")


if __name__ == "__main__":
    main()
