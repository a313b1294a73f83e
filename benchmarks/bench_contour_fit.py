"""Benchmark the mask -> Chebyshev contour conversion on the 759 real COCO masks.

For each representation x fit it prints the mean IoU of the (rounded) answer with the true mask,
masks/s in this process, and masks/s with a process pool (what the COCO converter does), plus
ratios against the ``fast`` fit of the same representation measured in the same run.

    .venv/bin/python benchmarks/bench_contour_fit.py [--repeats 3] [--workers 2] [--terms 8]

Throughput counts the whole per-instance job (``encode_mask_rle``: RLE decode, working raster,
contour, fit, rounding, rasterising the answer and scoring it). Each timing is the best of
``--repeats`` passes, so other load on the machine inflates it less.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny matrices: BLAS threads only add overhead

import numpy as np  # noqa: E402

from vlmr1.geometry import encode_mask_rle, rle_area  # noqa: E402

DATA = Path("/work/shared/data/coco-samples")


def load_rles(data: Path) -> list[dict]:
    """Non-crowd masks with area >= 64 px from both shared files (759 masks)."""
    rles = [a["segmentation"] for a in json.loads((data / "val2014_predicted_masks_734.json").read_text())]
    gt = json.loads((data / "val2017_instances_2img.json").read_text())["annotations"]
    rles += [a["segmentation"] for a in gt if not a["iscrowd"]]
    return [r for r in rles if rle_area(r) >= 64]


def _job(args) -> float:
    rle, rep, terms, fit = args
    return encode_mask_rle(rle, rep, terms, fit)[1]


def _serial(rles, rep, terms, fit, repeats) -> tuple[float, float, float]:
    """Mean IoU, masks/s (wall) and CPU ms per mask (less sensitive to other load), best of repeats."""
    best, best_cpu, ious = float("inf"), float("inf"), None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        ious = [_job((r, rep, terms, fit)) for r in rles]
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return float(np.mean(ious)), len(rles) / best, 1e3 * best_cpu / len(rles)


def _pooled(pool, rles, rep, terms, fit, repeats, workers) -> float:
    jobs = [(r, rep, terms, fit) for r in rles]
    chunk = max(1, len(jobs) // (workers * 8))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in pool.imap_unordered(_job, jobs, chunksize=chunk):
            pass
        best = min(best, time.perf_counter() - t)
    return len(rles) / best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--terms", type=int, default=8)
    args = ap.parse_args(argv)

    rles = load_rles(args.data)
    print(f"{len(rles)} masks (non-crowd, area >= 64 px), terms={args.terms}, cpus={os.cpu_count()}")
    _job((rles[0], "parametric", args.terms, "refined"))  # imports and caches outside the timings

    rows = {}
    with get_context("spawn").Pool(args.workers) as pool:
        pool.map(_job, [(rles[0], "radial", args.terms, "refined")] * args.workers * 2)  # warm workers
        for rep in ("parametric", "radial"):
            for fit in ("fast", "refined"):
                iou, serial, cpu = _serial(rles, rep, args.terms, fit, args.repeats)
                pooled = _pooled(pool, rles, rep, args.terms, fit, args.repeats, args.workers)
                rows[rep, fit] = (iou, serial, cpu, pooled)
                print(f"  measured {rep:10s} {fit:7s}", file=sys.stderr)

    head = (
        f"{'representation':14s} {'fit':8s} {'mean IoU':>8s} {'masks/s 1 proc':>15s} {'CPU ms/mask':>11s} "
        f"{'masks/s ' + str(args.workers) + ' workers':>18s} {'IoU - fast':>10s} {'speed / fast':>12s}"
    )
    print(head)
    print("-" * len(head))
    for (rep, fit), (iou, serial, cpu, pooled) in rows.items():
        f_iou, _, _, f_pooled = rows[rep, "fast"]
        print(
            f"{rep:14s} {fit:8s} {iou:8.4f} {serial:15.0f} {cpu:11.2f} {pooled:18.0f} {iou - f_iou:+10.4f} "
            f"{pooled / f_pooled:11.2f}x"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average during the run: {load:.1f} (timings assume an otherwise idle machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
