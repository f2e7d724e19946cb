"""The store's netCDF4 writer (h5py alone) against h5netcdf writing the same run.

h5netcdf is the peer: the same records written through its API must give the same
HDF5 objects — names in creation order, dtypes, shapes, chunks, filters, fill values,
attributes in creation order with their values and types, dimension-scale links by
name — and both files must read back the same through h5netcdf and xarray.
"""
import h5netcdf
import h5py
import numpy as np
import pytest
import xarray as xr

import flowkit
from flowkit.store import _layout


def _h5netcdf_store(path, records):
    """The store file as h5netcdf writes it (flowkit's writer before it had its own)."""
    with h5netcdf.File(path, "w") as f:
        for key, value in _layout._root_attrs().items():
            f.attrs[key] = value
        runs = f.create_group("runs")
        for rec in records:
            g = runs.create_group(rec.run_id)
            a = rec.arrays
            dims = {"sample": a["X"].shape[0], "feature": a["X"].shape[1]}
            if "gamma" in a:
                dims.update(gamma=a["gamma"].size, side=2, state_dim=a["state"].shape[1])
            g.dimensions = dims
            for name, (vdims, long_name) in _layout.VARIABLES.items():
                if name not in a:
                    continue
                filters = dict(_layout._FILTERS, chunks=True) if a[name].size else {}
                v = g.create_variable(name, vdims, "<f8", data=a[name], **filters)
                v.attrs["long_name"] = long_name
                if name == "gamma":
                    side = g.create_variable("side", ("side",), h5py.string_dtype(),
                                             data=np.array(["+", "-"], dtype=object))
                    side.attrs["long_name"] = "u+ (theta[:, 0]) and u- (theta[:, 1])"
            for key, value in rec.attrs.items():
                g.attrs[key] = value


def _attr_value(obj, key):
    value = obj.attrs[key]
    if key == "DIMENSION_LIST":
        return [[obj.file[r].name for r in refs] for refs in value]
    if key == "REFERENCE_LIST":
        return sorted((obj.file[r].name, int(axis)) for r, axis in value)
    return value


def _describe(path):
    """Every object of the file: name -> (kind, properties, [(attribute, value, dtype, shape)])."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            attrs = []
            for key in obj.attrs:  # creation order where tracked
                aid = obj.attrs.get_id(key)
                attrs.append((key, _attr_value(obj, key), str(aid.dtype), aid.shape))
            if isinstance(obj, h5py.Dataset):
                props = (obj.shape, str(obj.dtype), obj.chunks, obj.compression, obj.compression_opts,
                         obj.shuffle, obj.fletcher32, obj.maxshape, repr(obj.fillvalue))
                kind = "dataset"
            else:
                cpl = obj.id.get_create_plist()
                props = (cpl.get_link_creation_order(), cpl.get_attr_creation_order(),
                         list(obj.keys()))
                kind = "group"
            out[name] = (kind, props, attrs)
        visit("/", f)
        f.visititems(visit)
    return out


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        kind = np.asarray(a).dtype.kind
        return np.asarray(a).dtype == np.asarray(b).dtype and np.array_equal(a, b, equal_nan=kind == "f")
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def records():
    """An ok run of each shape of data and a failed run (including empty data)."""
    recs = []
    X, y = flowkit.datasets.load("fig4a")
    for depth, alpha, gamma, ppd in ((2, 1.0, 1e3, 20), (3, 0.5, 50.0, 3)):
        s = dict(depth=depth, alpha=alpha, stopping={"gamma": gamma}, points_per_decade=ppd)
        traj = flowkit.integrate(X, y, depth=depth, alpha=alpha, gamma=gamma, points_per_decade=ppd)
        recs.append(_layout.record_from_trajectory(traj, X=X, y=y, dataset="fig4a", settings=s))
    rng = np.random.default_rng(3)
    X2 = rng.normal(size=(7, 40))
    y2 = np.where(rng.random(7) < 0.5, -1.0, 1.0)
    s = dict(depth=2, alpha=2.0, stopping={"gamma": 1e4})
    traj = flowkit.integrate(X2, y2, depth=2, alpha=2.0, gamma=1e4)
    recs.append(_layout.record_from_trajectory(traj, X=X2, y=y2, dataset="random", settings=s))
    recs.append(_layout.record_failure(X=X, y=y, dataset="fig4a", settings=dict(depth=2, alpha=1.0,
                                       stopping={"gamma": 2e3}), error="IntegrationError: x"))
    recs.append(_layout.record_failure(X=np.zeros((0, 3)), y=np.zeros(0), dataset="empty",
                                       settings=dict(depth=2, alpha=1.0, stopping={"gamma": 1e3}),
                                       error="DataError: no samples"))
    return recs


def test_same_objects_as_h5netcdf_writes(tmp_path, records):
    ours, peer = tmp_path / "ours.h5", tmp_path / "peer.h5"
    _layout.create_store_file(ours, records)
    _h5netcdf_store(peer, records)
    a, b = _describe(ours), _describe(peer)
    assert list(a) == list(b)
    for name in a:
        kind_a, props_a, attrs_a = a[name]
        kind_b, props_b, attrs_b = b[name]
        if kind_a == "dataset" and 0 in props_a[0]:
            # an unlimited (size-0) dimension: chunk shapes are each library's own guess
            props_a, props_b = props_a[:2] + props_a[3:], props_b[:2] + props_b[3:]
        assert kind_a == kind_b and props_a == props_b, name
        keys_a = [k for k, *_ in attrs_a if k != "_NCProperties"]
        keys_b = [k for k, *_ in attrs_b if k != "_NCProperties"]
        assert keys_a == keys_b, name
        for (ka, va, ta, sa), (kb, vb, tb, sb) in zip(
                [t for t in attrs_a if t[0] != "_NCProperties"], [t for t in attrs_b if t[0] != "_NCProperties"]):
            if ka == "created":
                continue  # the time of writing
            assert (ta, sa) == (tb, sb) and _same(va, vb), (name, ka, va, vb)
    with h5py.File(ours, "r") as f:
        props = f.attrs["_NCProperties"]
        assert isinstance(props, bytes) and props.startswith(b"version=2,")


def test_h5netcdf_and_xarray_read_ours_as_the_peers(tmp_path, records):
    ours, peer = tmp_path / "ours.h5", tmp_path / "peer.h5"
    _layout.create_store_file(ours, records)
    _h5netcdf_store(peer, records)
    for rec in records:
        group = f"runs/{rec.run_id}"
        with h5netcdf.File(ours, "r") as fa, h5netcdf.File(peer, "r") as fb:
            ga, gb = fa[group], fb[group]
            assert dict(ga.dimensions) .keys() == dict(gb.dimensions).keys()
            assert {k: v.size for k, v in ga.dimensions.items()} == {k: v.size for k, v in gb.dimensions.items()}
            assert set(ga.variables) == set(gb.variables)
            for vname in ga.variables:
                assert ga.variables[vname].dimensions == gb.variables[vname].dimensions, vname
        with xr.open_dataset(ours, group=group, engine="h5netcdf") as da, \
                xr.open_dataset(peer, group=group, engine="h5netcdf") as db:
            xr.testing.assert_identical(da, db)
            for name, arr in rec.arrays.items():
                np.testing.assert_array_equal(da[name].values, arr)


def test_append_and_replace_keep_the_layout(tmp_path, records):
    """append_runs (the commit) on a file first written by the other writer."""
    peer = tmp_path / "peer.h5"
    _h5netcdf_store(peer, records[:1])
    _layout.append_runs(peer, records[1:])
    with h5netcdf.File(peer, "r") as f:
        assert set(f["runs"].groups) == {r.run_id for r in records}
    with h5py.File(peer, "r") as f:
        for rec in records:
            back = _layout.read_run(f["runs"][rec.run_id])
            assert back.verify() is None


def test_netcdf_c_reads_a_store_built_by_commits(tmp_path, records):
    """netCDF-C (netCDF4-python) as the independent reader, on a file grown by appends,
    whose dimension ids must stay unique across the file as netCDF numbers them."""
    import netCDF4  # the test extra installs it
    path = tmp_path / "grown.h5"
    _layout.create_store_file(path, records[:1])
    _layout.append_runs(path, records[1:3])
    _layout.append_runs(path, records[3:], replace=())
    ids = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: ids.append(int(o.attrs["_Netcdf4Dimid"]))
                     if o.attrs.get("CLASS") == b"DIMENSION_SCALE" else None)
    assert sorted(ids) == list(range(len(ids)))
    with netCDF4.Dataset(path) as ds:
        assert ds.title == "flowkit trajectory store"
        assert set(ds["runs"].groups) == {r.run_id for r in records}
        for rec in records:
            g = ds["runs"][rec.run_id]
            assert g.run_id == rec.run_id and g.status == rec.attrs["status"]
            for name, arr in rec.arrays.items():
                v = g[name]
                assert v.dimensions == _layout.VARIABLES[name][0], name
                np.testing.assert_array_equal(np.asarray(v[...]), arr)
            if rec.ok:
                assert list(g["side"][:]) == ["+", "-"]
                assert g.depth == rec.attrs["depth"] and g.alpha == rec.attrs["alpha"]
