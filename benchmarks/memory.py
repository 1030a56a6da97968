"""Peak memory of the current process.

`getrusage().ru_maxrss` survives `execve` on Linux, so a child started by a big benchmark process would
report the parent's peak; the kernel's `VmHWM` belongs to the process image and starts afresh.
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_mib() -> float:
    """This process's peak resident memory in MiB (VmHWM; ru_maxrss where /proc is missing)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tree_rss_mib(root: int, excluded: set[int]) -> float:
    """Resident memory of `root` and its descendants now, in MiB, leaving out the subtrees of `excluded` (Linux)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
            parents[pid], rss[pid] = int(fields[1]), int(fields[21])   # ppid; rss in pages
        except (OSError, IndexError, ValueError):
            continue
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in excluded:
            continue
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total * resource.getpagesize() / 2**20
