"""Find run groups by their object headers when the run index cannot be read.

Why: a store grows by copy-and-append commits, so the /runs link index (a fractal
heap and B-trees) is rewritten at the end of the file with every commit.  A file cut
short loses that index while most runs' own bytes lie before the cut, and opening the
runs by name then finds none of them.  Every run group, though, has a version-2 HDF5
object header (the netCDF4 layout tracks creation order, which needs one): the four
bytes ``OHDR`` followed by the header and a Jenkins checksum that HDF5 verifies when it
loads the header.  So the bytes are searched for that signature and each hit is opened
as an object by its address; a hit inside compressed data, or a header cut by the
truncation, fails HDF5's own checks and is passed over.  The run's checksum and the
hash of its id (RunRecord.verify) then decide whether what was found is intact.

HDF5 opens an object by address through ``H5Oopen_by_token``, which h5py does not
wrap: it is called with ctypes from the HDF5 library h5py itself is linked against
(resolved through h5py's extension module, so it is the very same library and the
identifier it returns is one h5py can own).  Called only in the child process that
``_check`` reads damaged files in, so a crash costs one object, not the check.
"""
from __future__ import annotations

import ctypes
import mmap

import h5py

__all__ = ["object_headers", "open_group_at", "scan_available"]

_OHDR = b"OHDR"


class _Token(ctypes.Structure):
    # H5O_token_t: the native VOL keeps the object's address, little-endian, in front
    _fields_ = [("data", ctypes.c_uint8 * 16)]


def _library():
    try:
        lib = ctypes.CDLL(h5py.h5o.__file__)
        open_by_token, get_type = lib.H5Oopen_by_token, lib.H5Iget_type
    except (OSError, AttributeError):
        return None
    open_by_token.restype, open_by_token.argtypes = ctypes.c_int64, [ctypes.c_int64, _Token]
    get_type.restype, get_type.argtypes = ctypes.c_int, [ctypes.c_int64]
    return open_by_token, get_type


_LIB = None


def scan_available():
    """Whether this HDF5 build exports what the scan needs (H5Oopen_by_token)."""
    global _LIB
    if _LIB is None:
        _LIB = _library() or False
    return bool(_LIB)


def object_headers(path, base=0):
    """File addresses of every ``OHDR`` signature in the file at ``path`` (byte offset
    minus ``base``, the superblock's offset when a user block precedes it)."""
    with open(path, "rb") as fh:
        try:
            view = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # empty file
            return []
        with view:
            found, at = [], view.find(_OHDR)
            while at >= 0:
                if at >= base:
                    found.append(at - base)
                at = view.find(_OHDR, at + 1)
    return found


def open_group_at(f, address):
    """The group whose object header is at ``address`` in the open h5py File ``f``, or
    None if there is no loadable object there or it is not a group."""
    if not scan_available():
        return None
    open_by_token, get_type = _LIB
    token = _Token()
    for k, byte in enumerate(int(address).to_bytes(8, "little")):
        token.data[k] = byte
    with h5py._objects.phil:
        hid = open_by_token(f.id.id, token)
        if hid < 0:
            return None
        if get_type(hid) != h5py.h5i.GROUP:
            h5py._objects.ObjectID(hid)  # owns hid and closes it when dropped
            return None
        return h5py.Group(h5py.h5g.GroupID(hid))
