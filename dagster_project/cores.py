"""At most one portal's builds per core at once, among the step processes of one run.

The portals of a multiprocess run start together and wait on their portals together; then each builds its model,
its marts and its publication, the machine's own work. Ten builds at once on two cores took more CPU than the same
builds two at a time (each process evicting the others' caches) and held ten builds' memory at once. So a step
process takes one of the machine's cores (a slot) before its first step that does not wait on its portal and gives it
back after its last step (`steps.each_step`); an extract, which mostly waits on its portal, runs beside the builds
without one.

The slots are byte-range locks on one unnamed file, opened by the forkserver the step processes are forked from
(`dagster_project.forkserver` calls `share`) and inherited by each of them. A lock belongs to the process that took
it, and the kernel releases it when that process ends, however it ends: an op killed while it builds frees its core.
A process not forked from that server (the command line, a backfill run, a test) has no slots to share and is not
held back.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

POLL_SECONDS = 0.02     # how often a waiting process looks for a free slot again


class CoreSlots:
    """`count` slots (None: the machine's cores) shared by the processes forked after this was made."""

    def __init__(self, count: int | None = None) -> None:
        self.count = max(1, count or os.cpu_count() or 1)
        descriptor, path = tempfile.mkstemp(prefix="b24wh-cores-")
        os.unlink(path)     # unnamed: nothing is left behind, however the run ends
        self._file = descriptor

    @contextmanager
    def held(self, taken: Callable[[float], None] = lambda waited: None) -> Iterator[None]:
        """One slot for the duration, waiting for one to be free; `taken` is told the seconds waited."""
        import fcntl  # POSIX only, as is the forkserver that makes the slots

        started = time.monotonic()
        while True:
            for slot in range(self.count):
                try:
                    fcntl.lockf(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, slot)
                except OSError as exc:
                    if exc.errno not in (errno.EACCES, errno.EAGAIN):
                        raise
                    continue
                taken(time.monotonic() - started)
                try:
                    yield
                finally:
                    fcntl.lockf(self._file, fcntl.LOCK_UN, 1, slot)
                return
            time.sleep(POLL_SECONDS)


_shared: CoreSlots | None = None


def share(count: int | None = None) -> None:
    """Makes the slots that every process forked from this one from now on shares (the forkserver, once);
    `count` None or 0: one per core of the machine."""
    global _shared
    _shared = CoreSlots(count)


def core(log: Callable[[str], None]) -> AbstractContextManager[None]:
    """A core of the machine for this process's builds, `log` told when it is taken: one of the shared slots in a
    process forked from the forkserver, else no limit."""
    slots = _shared
    if slots is None:
        return nullcontext()
    return slots.held(lambda waited: log(f"Took one of the {slots.count} cores the run's builds share, after "
                                         f"waiting {waited:.1f} s"))
