"""netCDF4 groups written with h5py alone, in the layout h5netcdf writes.

Why not h5netcdf itself: it keeps Python objects for every dimension and variable and
re-reads attributes through them, ~50 ms for one run's group of twelve small arrays;
the same HDF5 objects made directly take a few milliseconds, and a sweep writes every
run twice (journal file, then the commit).  The files must stay what they were, so
this module reproduces h5netcdf 1.x's choices one by one (tests/test_store_netcdf.py
compares the two writers object by object and opens the result with h5netcdf and
xarray):

* the file and every group track link and attribute creation order (netCDF-C needs it);
* every dimension is a dimension scale with ``_Netcdf4Dimid``; a dimension without a
  variable of its name is an empty ``>f4`` dataset whose scale NAME is netCDF's
  "This is a netCDF dimension but not a netCDF variable." and the size in 10 columns;
* a variable carries ``_Netcdf4Coordinates`` (its dimension ids) and, after it,
  ``_Netcdf4Dimid`` of its first dimension (what netCDF-C adds on first write);
* numeric attributes are 1-element arrays, strings variable-length UTF-8 scalars;
* the root holds ``_NCProperties`` as a fixed-length ASCII string.
"""
from __future__ import annotations

import h5py
import numpy as np

__all__ = ["create_file", "write_group", "next_dimid", "set_attrs"]

_NOT_A_VARIABLE = b"This is a netCDF dimension but not a netCDF variable."


def create_file(path, attrs):
    """A new netCDF4 file at ``path`` with root attributes ``attrs``; returns the h5py
    File (open for writing: the caller closes it)."""
    f = h5py.File(path, "w", track_order=True)
    try:
        props = f"version=2,flowkit-h5py={h5py.__version__},hdf5={h5py.version.hdf5_version}"
        f.attrs["_NCProperties"] = np.array(props, dtype=h5py.string_dtype("ascii", len(props)))
        set_attrs(f, attrs)
    except BaseException:
        f.close()
        raise
    return f


_STR = h5py.string_dtype()
_TYPES = {}  # numpy dtype -> (file type, memory type), as h5py's AttributeManager makes them


def _types(dtype):
    if dtype not in _TYPES:
        _TYPES[dtype] = (h5py.h5t.py_create(dtype, logical=True), h5py.h5t.py_create(dtype))
    return _TYPES[dtype]


def set_attrs(obj, attrs):
    """Attributes as h5netcdf's Attributes write them: numeric scalars as 1-element
    arrays, str as a variable-length UTF-8 scalar."""
    for key, value in attrs.items():
        if isinstance(value, str):
            value = np.array(value, dtype=_STR)
        elif np.isscalar(value):
            value = np.atleast_1d(value)
        _put(obj, key, value)


def _put(obj, key, value):
    """A new attribute of the shape and dtype of ``value``: the HDF5 calls of h5py's
    ``obj.attrs[key] = value`` for a name not yet present, without the Python around
    them (a third of the time)."""
    data = np.asarray(value)
    ftype, mtype = _types(data.dtype)
    attr = h5py.h5a.create(obj.id, key.encode(), ftype, h5py.h5s.create_simple(data.shape))
    try:
        attr.write(data, mtype=mtype)
    finally:
        attr.close()


def write_group(parent, name, dims, variables, attrs, first_dimid=0):
    """Group ``parent/name`` holding netCDF dimensions and variables; returns the next
    free dimension id.

    ``dims``: {dimension: size}, in the order of their ids, which start at
    ``first_dimid`` (netCDF numbers dimensions across the whole file: pass what
    ``next_dimid`` says, or the previous call's result).  ``variables``: a list of
    (name, dimensions, data, dtype, attributes, dataset options) in the order of
    writing, each coordinate (a variable named after its one dimension) before the
    variables that use it.  ``attrs``: the group's attributes, written last.
    """
    g = parent.create_group(name, track_order=True)
    dimid = {dim: np.int32(first_dimid + i) for i, dim in enumerate(dims)}
    coords = {vname for vname, vdims, *_ in variables if vdims == (vname,) and vname in dims}
    scales = {}
    # a dimension of size 0 is netCDF's unlimited one (nc_def_dim's NC_UNLIMITED = 0)
    unlimited = {dim for dim, size in dims.items() if size == 0}
    for dim, size in dims.items():  # h5netcdf makes every dimension's scale first
        if dim not in coords:
            extra = {"maxshape": (None,)} if dim in unlimited else {}
            ds = g.create_dataset(dim, shape=(size,), dtype=">f4", track_order=True, **extra)
            _put(ds, "_Netcdf4Dimid", dimid[dim])
            ds.make_scale(_NOT_A_VARIABLE + b"%10d" % size)
            scales[dim] = ds
    for vname, vdims, data, dtype, vattrs, options in variables:
        if unlimited.intersection(vdims):  # resizable, hence chunked (h5py picks the chunks)
            options = dict(options, chunks=True, maxshape=tuple(
                None if d in unlimited else n for d, n in zip(vdims, np.shape(data))))
        v = g.create_dataset(vname, data=data, dtype=dtype, track_order=True, **options)
        ids = np.array([dimid[d] for d in vdims], dtype=np.int32)
        if vname in coords:
            _put(v, "_Netcdf4Dimid", dimid[vname])
            v.make_scale(vname)
            scales[vname] = v
            _put(v, "_Netcdf4Coordinates", ids)
        else:
            for axis, dim in enumerate(vdims):
                v.dims[axis].attach_scale(scales[dim])
            _put(v, "_Netcdf4Coordinates", ids)
            # h5netcdf's rule (after netCDF-C's first write): not when the first
            # dimension is the unlimited one
            grows = [d in unlimited for d in vdims]
            if len(ids) and not grows[0]:
                _put(v, "_Netcdf4Dimid", ids[0])
        set_attrs(v, vattrs)
    set_attrs(g, attrs)
    return first_dimid + len(dims)


def _scale_ids(group):
    ids = []
    for obj in group.values():
        if isinstance(obj, h5py.Dataset) and obj.attrs.get("CLASS") == b"DIMENSION_SCALE":
            ids.append(int(obj.attrs.get("_Netcdf4Dimid", -1)))
    return ids


def next_dimid(parent):
    """The first dimension id not used in ``parent``'s groups.  Groups are numbered in
    the order of their creation, so the newest one holds the largest ids; a group that
    does not track creation order is scanned whole (h5netcdf scans every file)."""
    if not len(parent):
        return 0
    if parent.id.get_create_plist().get_link_creation_order():
        newest = parent[list(parent)[-1]]  # h5py lists a tracking group in creation order
        return max(_scale_ids(newest), default=-1) + 1
    return max((i for g in parent.values() if isinstance(g, h5py.Group) for i in _scale_ids(g)),
               default=-1) + 1
