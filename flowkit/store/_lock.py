"""The writer lock: at most one process writes a store.

``<path>.lock`` is locked with flock(LOCK_EX | LOCK_NB) for the writer's lifetime and
holds the writer's PID (for the error message only: the lock is the flock, not the
file's content or existence).  The kernel drops an flock when its last file descriptor
closes, including on SIGKILL, so a crashed writer never leaves a stale lock behind;
the lock file itself stays (deleting it would race with a process that has just opened
it).  flock locks belong to the open file description, so a second open_store(mode="a")
inside the same process conflicts too.  On NFS, flock is emulated with fcntl byte-range
locks by Linux clients; local filesystems are the supported case.
"""
from __future__ import annotations

import errno
import fcntl
import os

from ._errors import StoreLockedError

__all__ = ["WriterLock"]


class WriterLock:
    def __init__(self, lock_path, store_path):
        self.path = os.fspath(lock_path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise StoreLockedError(
                f"{store_path}: another process is writing this store ({self._holder()}; "
                f"lock file {self.path}); open it with mode='r' to read, or wait for that "
                "writer to finish") from None
        # the lock is ours: record who holds it
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _holder(self):
        try:
            with open(self.path) as fh:
                pid = fh.read().strip()
        except OSError:
            pid = ""
        return f"PID {pid}" if pid.isdigit() else "PID unknown"

    @property
    def held(self):
        return self._fd is not None

    def release(self):
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the flock
