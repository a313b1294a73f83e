"""Killing ``vlmr1 data coco`` (SIGKILL of the parent, as the OOM killer does) leaves no process behind: its workers
end with it, and with them the forkserver and the resource tracker they kept alive."""

import os
import signal
import time
from pathlib import Path

import pytest
from test_reliability_faults import SAMPLES, coco_command, kill_when, lay_out, start


def alive_descendants(root_pid: int, known: set[int] = frozenset()) -> set[int]:
    """Pids below ``root_pid`` now (from /proc), plus those of ``known`` still running (zombies count as ended)."""
    parents, running = {}, set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        if fields[0] != "Z":
            running.add(pid)
    found, frontier = set(), {root_pid}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return (found | set(known)) & running


@pytest.mark.slow  # kills a process tree
@pytest.mark.skipif(not SAMPLES.is_dir() or not Path("/proc/self/stat").exists(),
                    reason="needs the shared COCO samples and /proc")
def test_a_killed_converter_leaves_no_process_behind(tmp_path):
    lay_out(tmp_path, copies=4)
    command = coco_command(tmp_path)
    command[command.index("--workers") + 1] = "2"
    command[command.index("--fit") + 1] = "refined"  # slow enough to be killed mid-way
    log = tmp_path / "coco.log"
    proc = start(command, log)
    family: set[int] = set()

    def workers_busy() -> bool:  # the pool is up: forkserver, resource tracker and both workers
        family.update(alive_descendants(proc.pid))
        return len(family) >= 4 and any((tmp_path / ".parts" / "val").glob("*/*.jsonl"))

    kill_when(proc, log, workers_busy)
    deadline = time.monotonic() + 30
    while alive_descendants(proc.pid, family) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = alive_descendants(proc.pid, family)
    for pid in left:  # do not leave them to the next test
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"still running after the parent was killed: {sorted(left)}\n{log.read_text()[-2000:]}"
