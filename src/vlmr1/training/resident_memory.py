"""The process's resident memory on Linux, for peak-memory measurements on CPU (benchmarks, ``gpu_smoke --tiny``).

torch keeps no allocator statistics on CPU and tracemalloc does not see its tensors, so a peak is the resident set's
high-water mark (``VmHWM`` in ``/proc/self/status``), reset to the current size through ``/proc/self/clear_refs``.
"""

from __future__ import annotations

import ctypes
import gc
import os
import re


def resident_bytes(field: str = "VmRSS") -> int:
    """A memory field of ``/proc/self/status`` in bytes (``VmRSS``: now; ``VmHWM``: the high-water mark)."""
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1)) * 1024


def settled_resident_bytes() -> int:
    """The resident set after a garbage collection and glibc's trim: what live objects hold."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return resident_bytes()


def reset_peak() -> None:
    """Start a new high-water mark at the current resident size (no-op where the kernel has no ``clear_refs``)."""
    if os.path.exists("/proc/self/clear_refs"):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")


def peak_bytes() -> int:
    """The resident set's high-water mark since the last :func:`reset_peak`."""
    return resident_bytes("VmHWM")
