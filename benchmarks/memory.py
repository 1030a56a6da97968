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
