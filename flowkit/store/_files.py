"""Durable file replacement: the only way the store ever changes a file in place.

``atomic_file(final)`` yields a temporary path in the same directory; on success the
temporary file is fsync'ed, renamed over ``final`` with os.replace (atomic on POSIX:
any observer, and any crash, sees the old file or the new one, never a mix) and the
directory is fsync'ed so the rename itself survives power loss.  On failure the
temporary file is removed.  A process killed inside the block leaves only a temporary
file, named so that the next writer recognises and deletes it (``is_temp``).
"""
from __future__ import annotations

import contextlib
import os
import secrets

__all__ = ["atomic_file", "fsync_path", "fsync_dir", "temp_name", "is_temp"]

_TEMP_SUFFIX = ".tmp"


def temp_name(final):
    """Hidden sibling of ``final``: .<name>.<pid>.<random>.tmp"""
    head, tail = os.path.split(os.fspath(final))
    return os.path.join(head, f".{tail}.{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}")


def is_temp(name, final_name):
    """Whether directory entry ``name`` is a temporary file of ``final_name`` (any pid)."""
    return name.startswith(f".{final_name}.") and name.endswith(_TEMP_SUFFIX)


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path):
    fd = os.open(path or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories; the rename still happened
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(final):
    tmp = temp_name(final)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(os.fspath(final)))
