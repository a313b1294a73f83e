"""Cost of the image check train, eval and ``vlmr1 data check`` run before a model loads
(:func:`vlmr1.data.images.image_problems`), against reading headers only (what training did before) and a plain
serial full decode, measured in the same run on copies of the two real COCO images in ``shared/data/coco-samples``.

Rows: header read (serial), full decode (serial, the baseline), the check's decode (JPEG at 1/8 scale, serial), the
check in threads without the cache (first run), the check with a warm cache (a rerun: only stat).

    .venv/bin/python benchmarks/bench_image_check.py [--copies 200] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vlmr1.data.images import decode_problem, image_problems  # noqa: E402

SHARED = Path("/work/shared/data/coco-samples")
if not SHARED.is_dir():
    SHARED = ROOT.parent / "shared" / "data" / "coco-samples"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def header(path: str) -> None:
    with Image.open(path) as img:
        img.size  # noqa: B018


def full_decode(path: str) -> None:
    with Image.open(path) as img:
        img.load()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=200, help="copies of each of the two COCO images")
    p.add_argument("--workers", type=int, default=None, help="threads (default: cpus + 4, at most 32)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VLMR1_CACHE_DIR"] = os.path.join(tmp, "cache")
        paths = []
        for source in sorted((SHARED / "images").glob("*.jpg")):
            for k in range(args.copies):
                target = os.path.join(tmp, f"{k:05d}_{source.name}")
                shutil.copy(source, target)
                paths.append(target)
        for path in paths:  # warm the page cache: every row measures decoding, not the disk
            Path(path).read_bytes()
        rows = [
            ("header read, serial (before)", timed(lambda: [header(p) for p in paths])),
            ("full decode, serial (baseline)", timed(lambda: [full_decode(p) for p in paths])),
            ("check decode (JPEG 1/8 scale), serial", timed(lambda: [decode_problem(p) for p in paths])),
            ("check, threads, cold cache", timed(lambda: image_problems(paths, args.workers))),
            ("check, threads, warm cache (rerun)", timed(lambda: image_problems(paths, args.workers))),
        ]
    baseline = rows[1][1]
    print(f"{len(paths)} COCO JPEGs (640x427 / 640x360), {os.cpu_count()} cpus")
    for name, seconds in rows:
        print(f"  {name:40s} {len(paths) / seconds:9.0f} images/s   {baseline / seconds:6.2f}x baseline")


if __name__ == "__main__":
    main()
