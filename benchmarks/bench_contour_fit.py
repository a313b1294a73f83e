"""Benchmark the mask -> Chebyshev contour conversion on the 759 real COCO masks, against a baseline commit.

For each representation x fit it prints the mean IoU of the rounded answer with the true mask (what the converter
writes as ``fit_iou``), CPU time per mask and masks per CPU-second in this process, masks/s with a process pool (as
the converter runs), and the same IoU and masks per CPU-second of the geometry at a baseline commit (default: the
last one before the batched fits), loaded beside the current code and timed in the same run, with the speed ratio.

Target: the default fit (parametric, refined) at >= 1,000 masks per CPU-second, so 2 idle cores convert >= 2,000
masks/s, with a mean IoU no lower than the baseline's (0.879 on these masks).

    .venv/bin/python benchmarks/bench_contour_fit.py [--repeats 3] [--workers 2] [--terms 8] [--baseline REV|none]

Throughput counts the whole per-instance job (RLE check, working raster, contour, fit, rounding, rasterising the
answer and scoring it). The current code runs it as the converter does, a batch of masks at a time
(``encode_mask_rles``); the baseline one mask at a time (its only API). CPU times are the best of ``--repeats``
passes of process time, which other jobs on the machine inflate less than wall time. BLAS threads are left as the
converter leaves them (not pinned).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _baseline import DEFAULT_REV, load_geometry  # noqa: E402

from vlmr1.geometry import encode_mask_rles, rle_area  # noqa: E402

DATA = Path("/work/shared/data/coco-samples")
CHUNK = 128  # masks per batch in the pool (the converter's chunks are larger)


def load_rles(data: Path) -> list[dict]:
    """Non-crowd masks with area >= 64 px from both shared files (759 masks)."""
    rles = [a["segmentation"] for a in json.loads((data / "val2014_predicted_masks_734.json").read_text())]
    gt = json.loads((data / "val2017_instances_2img.json").read_text())["annotations"]
    rles += [a["segmentation"] for a in gt if not a["iscrowd"]]
    return [r for r in rles if rle_area(r) >= 64]


def _batch_job(args) -> list[float]:
    rles, rep, terms, fit = args
    return [r[1] for r in encode_mask_rles(rles, rep, terms, fit)]


def _cpu(run, n, repeats) -> tuple[float, float]:
    """(mean IoU, best CPU seconds per mask) of ``run()`` -> list of IoUs."""
    best, ious = float("inf"), None
    for _ in range(repeats):
        c = time.process_time()
        ious = run()
        best = min(best, time.process_time() - c)
    return float(np.mean(ious)), best / n


def _pooled(pool, rles, rep, terms, fit, repeats) -> float:
    jobs = [(rles[i : i + CHUNK], rep, terms, fit) for i in range(0, len(rles), CHUNK)]
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in pool.imap_unordered(_batch_job, jobs):
            pass
        best = min(best, time.perf_counter() - t)
    return len(rles) / best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--terms", type=int, default=8)
    ap.add_argument("--baseline", default=DEFAULT_REV, help="git commit of the baseline geometry, or 'none'")
    args = ap.parse_args(argv)

    rles = load_rles(args.data)
    n = len(rles)
    base = None if args.baseline == "none" else load_geometry(args.baseline)
    print(f"{n} masks (non-crowd, area >= 64 px), terms={args.terms}, cpus={os.cpu_count()}, "
          f"baseline={args.baseline if base else 'none'}")
    _batch_job((rles[:4], "parametric", args.terms, "refined"))  # imports and caches outside the timings
    rows = {}
    with get_context("spawn").Pool(args.workers) as pool:
        pool.map(_batch_job, [(rles[:4], "radial", args.terms, "refined")] * args.workers * 2)  # warm workers
        for rep in ("parametric", "radial"):
            for fit in ("fast", "refined"):
                iou, cpu = _cpu(lambda: _batch_job((rles, rep, args.terms, fit)), n, args.repeats)  # noqa: B023
                pooled = _pooled(pool, rles, rep, args.terms, fit, args.repeats)
                old = (float("nan"), float("nan"))
                if base is not None:
                    old = _cpu(lambda: [base.encode_mask_rle(r, rep, args.terms, fit)[1] for r in rles],  # noqa: B023
                               n, max(1, args.repeats - 1))
                rows[rep, fit] = (iou, cpu, pooled, *old)
                print(f"  measured {rep:10s} {fit:7s}", file=sys.stderr)

    head = (f"{'representation':14s} {'fit':8s} {'mean IoU':>8s} {'CPU ms/mask':>11s} {'masks/CPU-s':>11s} "
            f"{'masks/s ' + str(args.workers) + ' workers':>18s} | {'base IoU':>8s} {'base masks/CPU-s':>16s} "
            f"{'speed-up':>8s}")
    print(head)
    print("-" * len(head))
    for (rep, fit), (iou, cpu, pooled, old_iou, old_cpu) in rows.items():
        print(f"{rep:14s} {fit:8s} {iou:8.4f} {1e3 * cpu:11.2f} {1 / cpu:11.0f} {pooled:18.0f} | {old_iou:8.4f} "
              f"{1 / old_cpu:16.0f} {old_cpu / cpu:7.2f}x")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average during the run: {load:.1f} (masks/s assume otherwise idle cores; CPU times less so)")
    print("target: parametric refined >= 1000 masks/CPU-s, mean IoU >= the baseline's")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
