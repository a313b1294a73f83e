"""Worker processes that end with the process that started them.

A ``ProcessPoolExecutor`` worker whose parent is killed (``kill -9``, the OOM killer) blocks on its task queue forever,
and keeps the forkserver and the resource tracker alive with it. Pass :func:`die_with_parent` as the pool's
``initializer`` (with the parent's pid): a daemon thread in each worker waits for that process to end and then ends
the worker.
"""

from __future__ import annotations

import os
import select
import threading
import time


def _wait_for_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)  # Linux >= 5.3: readable once the process has ended
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])
        return
    while True:  # elsewhere: poll
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        time.sleep(0.5)


def _watch(pid: int) -> None:
    _wait_for_exit(pid)
    os._exit(1)  # no cleanup to run: the parent that wanted the results is gone


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: end this worker as soon as ``parent_pid`` ends."""
    if parent_pid != os.getpid():
        threading.Thread(target=_watch, args=(parent_pid,), daemon=True, name="vlmr1-die-with-parent").start()
