"""Trajectory store: layout, identity, journal/commit, crash safety, locking, damage.

Crash tests fork the test process (no re-import, so each trial costs only its writes)
and SIGKILL the child: at random moments, and deterministically just before each file
operation the store performs.
"""
import os
import random
import shutil
import signal
import time

import h5py
import numpy as np
import pytest
import xarray as xr

import flowkit
from flowkit.store import (SUMMARY_COLUMNS, StoreError, StoreLockedError, check_store,
                           integrate_kwargs, main_check, open_store, run_id, salvage)
from flowkit.store import _check

FIELDS = ("gamma", "w", "margin", "w_hat", "theta", "log_time", "state")
SETTINGS = [
    dict(depth=2, alpha=0.5, stopping={"gamma": 1e3}),
    dict(depth=3, alpha=2.0, stopping={"gamma": 3e2}, points_per_decade=8),
    dict(depth=2, alpha=1.0, stopping={"loss": "1e-200"}, points_per_decade=5, save_at=[7.5, 40.0]),
    dict(depth=4, alpha=0.7, stopping={"mu": 1e-3}, rtol=1e-9, points_per_decade=6),
    dict(depth=3, alpha=0.3, stopping={"gamma": 1e2}, points_per_decade=5),
    dict(depth=2, alpha=3.0, stopping={"gamma": 2e2}, points_per_decade=5, method="BDF"),
]


@pytest.fixture(scope="module")
def data():
    return flowkit.datasets.load("fig4a")


@pytest.fixture(scope="module")
def runs(data):
    """(settings, trajectory, run id) of a small sweep, computed once."""
    X, y = data
    out = []
    for s in SETTINGS:
        traj = flowkit.integrate(X, y, **integrate_kwargs(s))
        out.append((s, traj, run_id(X, y, **s)))
    return out


def _write_all(path, runs, data, commit=True):
    X, y = data
    with open_store(path, mode="a") as store:
        for s, traj, _ in runs:
            store.write(traj, X=X, y=y, dataset="fig4a", settings=s)
        if commit:
            store.commit()


@pytest.fixture(scope="module")
def full_store(tmp_path_factory, runs, data):
    """A committed store holding every run of ``runs`` (read-only for the tests)."""
    path = str(tmp_path_factory.mktemp("full") / "full.h5")
    _write_all(path, runs, data)
    return path


def _equal_runs(a, b, rid):
    """Same run in stores a and b: every array and attribute but the write time."""
    ta, tb = a.load(rid, flow=False), b.load(rid, flow=False)
    for name in FIELDS:
        assert np.array_equal(getattr(ta, name), getattr(tb, name)), (rid, name)
    ia, ib = a.info(rid), b.info(rid)
    for key in ("timestamp", "checksum", "file"):
        ia.pop(key), ib.pop(key)
    assert ia == ib


# ------------------------------------------------------------------------- layout and API
def test_round_trip_every_field(tmp_path, runs, data):
    path = str(tmp_path / "s.h5")
    X, y = data
    with open_store(path, mode="a") as store:
        for s, traj, rid in runs:
            assert store.write(traj, X=X, y=y, dataset="fig4a", settings=s) == rid
            # from the journal before the commit, from the main file after it
            for stage in ("journal", "main"):
                back = store.load(rid)
                for name in FIELDS:
                    got, want = getattr(back, name), getattr(traj, name)
                    assert got.dtype == np.float64 and got.shape == want.shape
                    assert np.array_equal(got, want), (name, stage)
                assert back.stats == traj.stats and back.stopping == traj.stopping
                assert (back.depth, back.alpha) == (traj.depth, traj.alpha)
                assert type(back.depth) is int and type(back.alpha) is float
                if stage == "journal":
                    assert store.info(rid)["file"].endswith(f"{rid}.h5")
                    store.commit()
            assert store.info(rid)["file"] == path
    info = open_store(path).info(runs[2][2])
    assert info["stopping"] == {"loss": "1E-200"} and info["save_at"] == [7.5, 40.0]
    assert info["stats"]["invariants"] == runs[2][1].stats["invariants"]
    assert set(info["versions"]) >= {"flowkit", "numpy", "scipy", "numba", "h5py"}
    assert info["versions"]["flowkit"] == flowkit.__version__
    assert info["status"] == "ok" and info["checksum"].startswith("sha256:")


def test_xarray_opens_each_run_as_labelled_data(full_store, runs, data):
    X, _ = data
    for s, traj, rid in runs[:3]:
        with xr.open_dataset(full_store, group=f"runs/{rid}", engine="h5netcdf") as ds:
            n, d = traj.w.shape
            assert dict(ds.sizes) == {"gamma": n, "feature": d, "sample": X.shape[0], "side": 2,
                                      "state_dim": traj.state.shape[1]}
            assert ds["w"].dims == ("gamma", "feature")
            assert ds["theta"].dims == ("gamma", "side", "feature")
            assert list(ds["side"].values) == ["+", "-"]
            np.testing.assert_array_equal(ds["gamma"].values, traj.gamma)
            for name in FIELDS:
                np.testing.assert_array_equal(ds[name].values, getattr(traj, name))
            np.testing.assert_array_equal(ds["X"].values, X)
            assert ds.attrs["run_id"] == rid and ds.attrs["depth"] == s["depth"]
            # labelled selection works as for any netCDF data
            assert float(ds["margin"].sel(gamma=traj.gamma[-1])) == traj.margin[-1]
    with h5py.File(full_store, "r") as f:
        assert f.attrs["schema_version"] == 1 and f.attrs["flowkit_version"] == flowkit.__version__
        w = f[f"runs/{runs[0][2]}/w"]
        assert w.chunks is not None and w.compression == "gzip" and w.fletcher32


def test_load_at_matches_in_memory(full_store, runs):
    store = open_store(full_store)
    for s, traj, rid in runs[:4]:
        lo, hi = traj.gamma[0], traj.gamma[-1]
        pts = np.geomspace(lo * 1.37, hi * 0.93, 5)
        want, got = traj.at(pts), store.load(rid).at(pts)
        for name in FIELDS:
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-12, atol=1e-300)


def test_run_id_stable_and_sensitive(data):
    X, y = data
    base = dict(depth=3, alpha=0.5, stopping={"gamma": 1e3})
    rid = run_id(X, y, **base)
    # pinned: a change to the hashing would silently recompute every stored sweep
    assert rid == run_id(X, y, flowkit_version=flowkit.__version__, **base)
    assert run_id(X, y, flowkit_version="0.1.0", **base) == "21d8f16521cde70d4aff"
    same = [
        dict(base, alpha=0.5, depth=3.0),
        dict(base, method="Radau", rtol=1e-10, atol=None, points_per_decade=20, save_at=None),
        dict(base, save_at=[]),
        dict(base, stopping="gamma=1000.0"),
        dict(base, stopping={"gamma": 1000}),
    ]
    for s in same:
        assert run_id(X, y, **s) == rid, s
    assert run_id(X.tolist(), y.astype(int), **base) == rid
    assert run_id(X, y, **dict(base, save_at=[9.0, 2.0, 9.0])) == run_id(X, y, **dict(base, save_at=[2.0, 9.0]))
    assert len({run_id(X, y, **dict(base, stopping={"loss": v})) for v in ("1e-3", "0.001", 1e-3, " 1E-3")}) == 1
    changed = [
        dict(base, depth=4),
        dict(base, alpha=np.nextafter(0.5, 1.0)),
        dict(base, stopping={"gamma": 1001.0}),
        dict(base, stopping={"mu": 1000.0}),
        dict(base, stopping={"loss": "1e-1000"}),
        dict(base, method="BDF"),
        dict(base, rtol=1e-9),
        dict(base, atol=1e-12),
        dict(base, points_per_decade=21),
        dict(base, save_at=[2.0]),
    ]
    ids = {run_id(X, y, **s) for s in changed}
    assert len(ids) == len(changed) and rid not in ids
    X2 = X.copy()
    X2[1, 2] = np.nextafter(X2[1, 2], 2.0)
    y2 = y.copy()
    y2[0] = -1.0
    others = {run_id(X2, y, **base), run_id(X, y2, **base), run_id(X[:2], y[:2], **base),
              run_id(X.reshape(-1, 1), np.ones(9), **base), run_id(X, y, flowkit_version="9.9", **base)}
    assert len(others) == 5 and rid not in others
    assert len(rid) == 20 and int(rid, 16) >= 0


def test_summary(tmp_path, runs, data):
    path = str(tmp_path / "s.h5")
    X, y = data
    with open_store(path, mode="a") as store:
        for s, traj, _ in runs[:3]:
            store.write(traj, X=X, y=y, dataset="fig4a", settings=s)
        store.commit()
        bad = dict(depth=2, alpha=1.0, stopping={"gamma": 5e3})
        failed = store.write_failure(X=X, y=y, dataset="fig4a", settings=bad,
                                     error=flowkit.IntegrationError("step size collapsed"))
        df = store.summary()
    assert list(df.columns) == list(SUMMARY_COLUMNS) and len(df) == 4
    assert list(df.run_id[:3]) == [rid for _, _, rid in runs[:3]]  # oldest first
    row = df.set_index("run_id").loc[runs[1][2]]
    traj = runs[1][1]
    assert row.dataset == "fig4a" and row.depth == 3 and row.alpha == 2.0
    assert row.stopping == "gamma=300.0" and row.status == "ok" and row.committed
    assert row.gamma_final == traj.gamma[-1] and row.margin_final == traj.margin[-1]
    assert row.nfev == traj.stats["nfev"] and row.steps == traj.stats["steps"]
    assert row.gamma_consistency == traj.stats["invariants"]["gamma_consistency"]
    f = df.set_index("run_id").loc[failed]
    assert f.status == "failed" and "IntegrationError: step size collapsed" in f.error
    assert np.isnan(f.gamma_final) and not f.committed  # still in the journal
    assert len(open_store(path).summary()) == 4
    assert open_store(path).summary().committed.all()


def test_journal_commit_and_readers(tmp_path, runs, data):
    path = str(tmp_path / "s.h5")
    X, y = data
    (s0, t0, r0), (s1, t1, r1) = runs[:2]
    store = open_store(path, mode="a")
    reader = open_store(path)  # opened before anything was written
    store.write(t0, X=X, y=y, dataset="fig4a", settings=s0)
    assert store.pending == [r0] and os.path.exists(f"{path}.journal/{r0}.h5")
    with h5py.File(path, "r") as f:
        assert list(f["runs"]) == []  # main untouched until commit
    assert r0 in reader and len(reader) == 1 and reader.summary().committed.tolist() == [False]
    assert np.array_equal(reader.load(r0).w, t0.w)
    assert store.commit() == 1 and store.pending == [] and os.listdir(f"{path}.journal") == []
    assert np.array_equal(reader.load(r0).w, t0.w)  # the reader follows the replaced file
    # the same run is never stored twice; an empty journal commits nothing
    assert store.write(t0, X=X, y=y, dataset="renamed", settings=s0) == r0
    assert store.pending == [] and store.commit() == 0
    store.write(t1, X=X, y=y, dataset="fig4a", settings=s1)
    store.close()  # closing commits
    assert sorted(reader.run_ids()) == sorted([r0, r1]) and reader.pending == []
    with pytest.raises(StoreError, match="closed"):
        store.load(r0)
    with pytest.raises(StoreError, match="read-only"):
        reader.write(t1, X=X, y=y, dataset="fig4a", settings=s1)
    with pytest.raises(StoreError, match="no run"):
        reader.load("0" * 20)


def test_failed_run_is_stored_then_superseded(tmp_path, runs, data):
    path = str(tmp_path / "s.h5")
    X, y = data
    s, traj, rid = runs[0]
    with open_store(path, mode="a") as store:
        assert store.write_failure(X=X, y=y, dataset="fig4a", settings=s, error="boom") == rid
        store.commit()
        assert rid in store
        with pytest.raises(StoreError, match="failed"):
            store.load(rid)
        assert store.info(rid)["error"] == "boom"
        # a second failure does not overwrite; a success replaces the failure
        store.write_failure(X=X, y=y, dataset="fig4a", settings=s, error="other")
        assert store.pending == []
        store.write(traj, X=X, y=y, dataset="fig4a", settings=s)
        assert store.commit() == 1
    store = open_store(path)
    assert store.info(rid)["status"] == "ok" and len(store) == 1
    assert np.array_equal(store.load(rid).state, traj.state)
    # and a success is never replaced by a failure
    with open_store(path, mode="a") as w:
        w.write_failure(X=X, y=y, dataset="fig4a", settings=s, error="late")
        assert w.pending == []


def test_write_refuses_settings_that_did_not_produce_the_trajectory(tmp_path, runs, data):
    X, y = data
    s, traj, _ = runs[0]
    with open_store(str(tmp_path / "s.h5"), mode="a") as store:
        for wrong in (dict(s, alpha=0.6), dict(s, depth=3), dict(s, stopping={"gamma": 2e3}),
                      dict(s, points_per_decade=19), dict(s, rtol=1e-9), dict(s, save_at=[5.0])):
            with pytest.raises(flowkit.FlowkitError, match="do not describe"):
                store.write(traj, X=X, y=y, dataset="fig4a", settings=wrong)
        X2, y2 = flowkit.datasets.load("fig4b")
        with pytest.raises(flowkit.FlowkitError, match="do not describe"):
            store.write(traj, X=X2, y=y2, dataset="fig4b", settings=s)
        assert len(store) == 0


# ------------------------------------------------------------------------- processes
def _fork(fn):
    """Run fn() in a forked child; returns its pid (exit 0 on success, 1 on error)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            fn()
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def _wait(pid):
    _, status = os.waitpid(pid, 0)
    return status


def test_second_writer_gets_a_clear_error_and_no_stale_lock(tmp_path, runs, data):
    path = str(tmp_path / "s.h5")
    rfd, wfd = os.pipe()

    def hold():
        os.close(rfd)
        store = open_store(path, mode="a")
        X, y = data
        s, traj, _ = runs[0]
        store.write(traj, X=X, y=y, dataset="fig4a", settings=s)
        store.commit()
        os.write(wfd, b"x")
        time.sleep(60)

    pid = _fork(hold)
    os.close(wfd)
    try:
        assert os.read(rfd, 1) == b"x"
        with pytest.raises(StoreLockedError) as err:
            open_store(path, mode="a")
        assert path in str(err.value) and f"PID {pid}" in str(err.value)
        assert isinstance(err.value, flowkit.FlowkitError)
        assert len(open_store(path)) == 1  # readers need no lock
    finally:
        os.kill(pid, signal.SIGKILL)
        _wait(pid)
        os.close(rfd)
    # the kernel released the dead writer's lock
    with open_store(path, mode="a") as store:
        assert len(store) == 1
        with pytest.raises(StoreLockedError):  # also within one process
            open_store(path, mode="a")


def _sweep(path, runs, data, commit_every=2, report=None):
    """What a sweep does: skip stored runs, write the others, commit every few.  With
    ``report`` (a pipe's write end) the id of each run is sent once write() returned."""
    X, y = data
    with open_store(path, mode="a") as store:
        for k, (s, traj, rid) in enumerate(runs):
            if rid in store:
                continue
            store.write(traj, X=X, y=y, dataset="fig4a", settings=s)
            if report is not None:
                os.write(report, rid.encode() + b"\n")
            if k % commit_every == commit_every - 1:
                store.commit()


def _killed_sweep(path, runs, data, kill, prepare=lambda: None):
    """Fork a sweep (after ``prepare()`` in the child), let ``kill(pid)`` end it;
    returns (wait status, ids whose write() returned)."""
    rfd, wfd = os.pipe()

    def child():
        os.close(rfd)
        prepare()
        _sweep(path, runs, data, report=wfd)

    pid = _fork(child)
    os.close(wfd)
    kill(pid)
    status = _wait(pid)
    with os.fdopen(rfd, "rb") as fh:
        written = fh.read().decode().split()
    return status, written


def _check_after_crash(path, order, written):
    """The store opens, holds a prefix of the sweep's runs, each complete and verified,
    and lost nothing whose write() had returned: only the run in flight may be missing."""
    if not os.path.exists(path):  # killed before the empty store appeared
        assert not written
        return 0
    store = open_store(path)
    have = set(store.run_ids())
    k = len(have)
    assert have == set(order[:k]), "not a prefix of the sweep"
    assert set(written) <= have, "a run whose write() had returned was lost"
    for rid in have:
        store.load(rid, flow=False)  # verifies the checksum
    return k


def _reset(directory):
    for name in os.listdir(directory):
        p = directory / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def test_sigkill_at_random_moments_then_resume(tmp_path, runs, data, full_store):
    order = [rid for _, _, rid in runs]
    ref = open_store(full_store)
    timing = tmp_path / "timing"
    timing.mkdir()
    for _ in range(2):  # the second, warm sweep sets the time scale
        _reset(timing)
        t0 = time.perf_counter()
        _sweep(str(timing / "s.h5"), runs, data)
        duration = time.perf_counter() - t0
    work = tmp_path / "work"
    work.mkdir()
    path = str(work / "s.h5")
    rng = random.Random(1234)
    seen, completed = [], 0
    for _ in range(12):
        pause = rng.uniform(0.0, 0.8 * duration)
        _, written = _killed_sweep(path, runs, data,
                                   lambda pid: (time.sleep(pause), os.kill(pid, signal.SIGKILL)))
        seen.append(_check_after_crash(path, order, written))
        if seen[-1] == len(order) or rng.random() < 0.3:
            # re-running the same command completes the rest, equal to an uninterrupted sweep
            _sweep(path, runs, data)
            store = open_store(path)
            assert store.run_ids() == ref.run_ids() and store.pending == []
            for rid in order:
                _equal_runs(store, ref, rid)
            completed += 1
            _reset(work)
    assert len(set(seen)) >= 3, f"kills landed at too few points of the sweep: {seen}"
    assert completed >= 2


def test_sigkill_before_every_file_operation(tmp_path, runs, data, full_store):
    """Kill the writer just before its k-th file operation, for every k; each time the
    file opens, holds a prefix, and a resumed sweep completes to the reference."""
    import flowkit.store._layout as layout_mod

    sub = runs[:3]
    order = [rid for _, _, rid in sub]
    # fsync is not a kill point: under SIGKILL (unlike power loss) the page cache
    # survives, so dying just before an fsync leaves what dying after it would
    ops = [(os, "replace"), (os, "unlink"), (shutil, "copyfile"), (layout_mod, "write_run")]

    def inject(k):
        count = [0]
        for mod, name in ops:
            orig = getattr(mod, name)

            def wrapper(*a, _orig=orig, **kw):
                count[0] += 1
                if count[0] == k:
                    os.kill(os.getpid(), signal.SIGKILL)
                return _orig(*a, **kw)
            setattr(mod, name, wrapper)

    k, points = 0, 0
    while True:
        k += 1
        _reset(tmp_path)
        path = str(tmp_path / "s.h5")
        status, written = _killed_sweep(path, sub, data, lambda pid: None, lambda: inject(k))
        if os.WIFEXITED(status):
            assert os.WEXITSTATUS(status) == 0
            break  # ran to completion: every operation has been a kill point
        assert os.WTERMSIG(status) == signal.SIGKILL
        points += 1
        _check_after_crash(path, order, written)
        _sweep(path, sub, data)
        store = open_store(path)
        assert store.run_ids() == sorted(order) and store.pending == []
        ref = open_store(full_store)
        for rid in order:
            _equal_runs(store, ref, rid)
    assert points >= 12, points  # journal writes, commits, copies, renames and deletions were all hit


def test_sigkill_inside_hdf5_writes(tmp_path, runs, data):
    """Kill the writer at its k-th write() inside the HDF5 library (files opened for
    writing go through a Python file object), at ~20 points spread over a sweep.  An
    HDF5 file updated in place does not survive this (tried: 45 of 59 kill points in a
    commit left runs unopenable); the journal and the copy-on-write commit must."""
    import io

    sub = runs[:3]
    order = [rid for _, _, rid in sub]

    def inject(k):
        """In the child: route HDF5 writes through a file object that dies at write k."""
        real, count = h5py.File, [0]

        class Killing(io.FileIO):
            def write(self, b):
                count[0] += 1
                if count[0] == k:
                    os.kill(os.getpid(), signal.SIGKILL)
                return super().write(b)

        class File(real):
            def __init__(self, name, mode="r", *a, **kw):
                if isinstance(name, (str, os.PathLike)) and mode in ("w", "a", "r+"):
                    update = os.path.exists(name) and mode != "w"
                    name, mode = Killing(name, "r+" if update else "w+"), ("r+" if update else "w")
                super().__init__(name, mode, *a, **kw)

        h5py.File = File
        return count

    # how many HDF5 writes a whole sweep makes: a dry run that never dies
    rfd, wfd = os.pipe()

    def dry_run():
        count = inject(0)
        _sweep(str(tmp_path / "dry.h5"), sub, data)
        os.write(wfd, str(count[0]).encode())

    assert _wait(_fork(dry_run)) == 0
    os.close(wfd)
    with os.fdopen(rfd) as fh:
        total = int(fh.read())
    assert total > 100
    work = tmp_path / "work"
    work.mkdir()
    for k in range(7, total, total // 20):
        _reset(work)
        path = str(work / "s.h5")
        status, written = _killed_sweep(path, sub, data, lambda pid: None, lambda: inject(k))
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        _check_after_crash(path, order, written)
        _sweep(path, sub, data)
        assert open_store(path).run_ids() == sorted(order)


# ------------------------------------------------------------------------- damage
def _damaged(tmp_path, src, name, how):
    dst = str(tmp_path / name)
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as fh:
        how(fh, os.path.getsize(dst))
    return dst


def _chunk_offset(path, rid, var="w"):
    with h5py.File(path, "r") as f:
        info = f[f"runs/{rid}/{var}"].id.get_chunk_info(0)
        return info.byte_offset, info.size


def test_damaged_files_raise_store_error_naming_them(tmp_path, full_store, runs):
    cases = {
        "empty.h5": lambda fh, n: fh.truncate(0),
        "text.h5": lambda fh, n: (fh.truncate(0), fh.write(b"run,alpha\n1,2\n" * 50)),
    }
    for frac in (0.05, 0.5, 0.9, 0.999):
        cases[f"cut{frac}.h5"] = lambda fh, n, frac=frac: fh.truncate(int(n * frac))
    for name, how in cases.items():
        bad = _damaged(tmp_path, full_store, name, how)
        for mode in ("r", "a"):
            with pytest.raises(StoreError, match=bad.replace(".", r"\.")) as err:
                open_store(bad, mode=mode)
            assert "truncated" in str(err.value) or "not an HDF5 file" in str(err.value)
        assert not os.path.exists(bad + ".journal")
    with pytest.raises(StoreError, match="empty"):
        open_store(str(tmp_path / "empty.h5"))
    plain = str(tmp_path / "plain.h5")
    with h5py.File(plain, "w") as f:
        f["x"] = 1
    with pytest.raises(StoreError, match="not a flowkit store"):
        open_store(plain)
    newer = _damaged(tmp_path, full_store, "newer.h5", lambda fh, n: None)
    with h5py.File(newer, "r+") as f:
        f.attrs["schema_version"] = 2
    with pytest.raises(StoreError, match="schema 2"):
        open_store(newer)
    with pytest.raises(StoreError, match="no such store"):
        open_store(str(tmp_path / "missing.h5"))
    # garbage over one run's data: that run fails loudly, the others load
    rid = runs[1][2]
    off, size = _chunk_offset(full_store, rid)
    garbled = _damaged(tmp_path, full_store, "garbled.h5",
                       lambda fh, n: (fh.seek(off + size // 3), fh.write(b"\x5a" * 64)))
    store = open_store(garbled)
    with pytest.raises(StoreError, match=f"garbled.h5.*{rid}"):
        store.load(rid)
    for _, traj, other in runs:
        if other != rid:
            assert np.array_equal(store.load(other, flow=False).w, traj.w)


def test_checksum_catches_what_hdf5_does_not(tmp_path, full_store, runs):
    rid = runs[0][2]
    path = _damaged(tmp_path, full_store, "attr.h5", lambda fh, n: None)
    with h5py.File(path, "r+") as f:
        f[f"runs/{rid}"].attrs["alpha"] = np.array([0.25])  # a well-formed but wrong value
    with pytest.raises(StoreError, match="checksum mismatch"):
        open_store(path).load(rid)
    report = check_store(path)
    assert not report.ok and set(report.bad) == {rid} and "checksum" in report.bad[rid]


def test_summary_says_what_it_has_not_verified(tmp_path, full_store, runs):
    """A flipped bit in a run's data: the attribute-only summary cannot see it and says
    so (``verified`` False); with verify=True the run is "damaged", as load() finds."""
    rid = runs[0][2]
    with h5py.File(full_store, "r") as f:  # the checksum, not HDF5's fletcher32: edit the values
        w = f[f"runs/{rid}/w"][()]
    path = _damaged(tmp_path, full_store, "bit.h5", lambda fh, n: None)
    with h5py.File(path, "r+") as f:
        w[3, 1] = np.nextafter(w[3, 1], np.inf)  # one bit of one number
        f[f"runs/{rid}/w"][...] = w
    store = open_store(path)
    quick = store.summary().set_index("run_id")
    assert quick.loc[rid, "status"] == "ok" and not quick["verified"].any()
    full = store.summary(verify=True).set_index("run_id")
    assert full["verified"].all() and full.loc[rid, "status"] == "damaged"
    assert "checksum" in full.loc[rid, "error"]
    assert (full.drop(index=rid)["status"] == "ok").all()
    with pytest.raises(StoreError, match="checksum"):
        store.load(rid)


def test_check_and_salvage(tmp_path, full_store, runs, data):
    order = [rid for _, _, rid in runs]
    assert check_store(full_store).ok and check_store(full_store).good == sorted(order)
    ref = open_store(full_store)
    for frac in (0.3, 0.8, 0.999):
        cut = _damaged(tmp_path, full_store, f"cut{frac}.h5", lambda fh, n, frac=frac: fh.truncate(int(n * frac)))
        out = str(tmp_path / f"cut{frac}.salvaged.h5")
        report = salvage(cut, out)
        size, eof = report.truncated
        assert size == int(eof * frac) and not report.ok
        assert report.salvaged == report.good and set(report.good) | set(report.bad) <= set(order)
        back = open_store(out)
        assert back.run_ids() == report.salvaged
        for rid in report.salvaged:
            _equal_runs(back, ref, rid)
        if frac == 0.999:
            assert len(report.salvaged) >= len(order) - 2
    # garbage in the middle of one run
    rid = runs[2][2]
    off, size = _chunk_offset(full_store, rid, "state")
    garbled = _damaged(tmp_path, full_store, "garbled.h5",
                       lambda fh, n: (fh.seek(off + 8), fh.write(os.urandom(size - 16))))
    report = check_store(garbled)
    assert set(report.bad) == {rid} and report.good == sorted(set(order) - {rid})
    out = str(tmp_path / "garbled.salvaged.h5")
    assert main_check(garbled, stream=open(os.devnull, "w")) == 1
    assert open_store(out).run_ids() == report.good
    with pytest.raises(StoreError, match="exists"):
        salvage(garbled, out)
    # not HDF5 / empty: reported, nothing to salvage
    for name, how in (("junk.h5", lambda fh, n: (fh.seek(0), fh.write(b"\0" * 4096))),
                      ("empty.h5", lambda fh, n: fh.truncate(0))):
        bad = _damaged(tmp_path, full_store, name, how)
        report = check_store(bad)
        assert report.root_error and bad in report.root_error and not report.readable
        assert main_check(bad, stream=open(os.devnull, "w")) == 2
    assert main_check(full_store, stream=open(os.devnull, "w")) == 0


def _data_ends(path):
    """run id -> last byte of its array chunks, from HDF5's own chunk index."""
    with h5py.File(path, "r") as f:
        return {rid: max(info.byte_offset + info.size for ds in g.values() if ds.chunks
                         for info in map(ds.id.get_chunk_info, range(ds.id.get_num_chunks())))
                for rid, g in f["runs"].items()}


def test_salvage_recovers_every_run_before_the_cut(tmp_path, full_store, runs):
    """A store cut short loses its run index (rewritten at the end by every commit): the
    runs are found by their object headers, and each run's metadata follows its own
    data, so every run whose chunks precede the cut is recovered, except at most the one
    the cut goes through (its metadata is after its data)."""
    ref = open_store(full_store)
    ends, size = _data_ends(full_store), os.path.getsize(full_store)
    for frac in (0.2, 0.35, 0.5, 0.65, 0.8, 0.95):
        cut = _damaged(tmp_path, full_store, f"front{frac}.h5", lambda fh, n, frac=frac: fh.truncate(int(n * frac)))
        before = {rid for rid, end in ends.items() if end <= int(size * frac)}
        report = salvage(cut, str(tmp_path / f"front{frac}.salvaged.h5"))
        assert len(report.salvaged) >= len(before) - 1, (frac, report.describe())
        assert report.scanned and set(report.salvaged) <= before
        back = open_store(report.salvaged_to)
        for rid in report.salvaged:
            _equal_runs(back, ref, rid)
    assert len(_data_ends(full_store)) == len(runs) and len(before) >= len(runs) - 1


def test_object_header_scan_finds_every_run_group(full_store, runs):
    """The scan's addresses against HDF5's own (H5Oget_info) for every group, and
    non-groups and non-headers are passed over."""
    from flowkit.store import _scan
    with h5py.File(full_store, "r") as f:
        groups = {h5py.h5o.get_info(g.id).addr: rid for rid, g in f["runs"].items()}
        datasets = {h5py.h5o.get_info(ds.id).addr for g in f["runs"].values() for ds in g.values()}
        found = _scan.object_headers(full_store)
        assert set(groups) <= set(found) and len(groups) == len(runs)
        for address in found:
            g = _scan.open_group_at(f, address)
            if address in groups:
                assert g.attrs["run_id"] == groups[address] and g.name == f"/runs/{groups[address]}"
            elif address in datasets:
                assert g is None
        assert all(_scan.open_group_at(f, a) is None for a in (1, 7, min(groups) + 1, 1 << 40))


def test_salvage_prefers_a_success_over_a_failure_of_the_same_run(tmp_path, runs, data):
    """The header search finds every intact group in the bytes, linked or not, so a run
    can turn up twice: a stored failure and the success that replaced it (HDF5 does
    not zero a freed header).  Salvage keeps the success, whichever comes first."""
    from flowkit.store import _layout
    X, y = data
    (s0, t0, r0), (s1, t1, r1) = runs[:2]
    fail = _layout.record_failure(X=X, y=y, dataset="fig4a", settings=s0, error="IntegrationError: x")
    ok0 = _layout.record_from_trajectory(t0, X=X, y=y, dataset="fig4a", settings=s0)
    ok1 = _layout.record_from_trajectory(t1, X=X, y=y, dataset="fig4a", settings=s1)
    for first, second in ((fail, ok0), (ok0, fail)):
        path = str(tmp_path / f"twice-{first.attrs['status']}.h5")
        _layout.create_store_file(path, [first, ok1])
        with h5py.File(path, "r+") as f:  # the first copy moves out of the index
            f.create_group("attic")
            f.move(f"runs/{r0}", f"attic/{r0}")
            _layout.write_run(f["runs"], second)
        cut = _damaged(tmp_path, path, "cut-" + os.path.basename(path), lambda fh, n: fh.truncate(n - 1))
        report = salvage(cut, str(tmp_path / ("out-" + os.path.basename(path))))
        back = open_store(report.salvaged_to)
        assert report.salvaged == sorted([r0, r1]) and back.info(r0)["status"] == "ok"
        assert np.array_equal(back.load(r0, flow=False).w, t0.w)


def test_salvage_includes_the_journal(tmp_path, runs, data):
    path = str(tmp_path / "s.h5")
    _write_all(path, runs[:2], data)
    # a writer that dies before committing leaves its finished runs in the journal
    X, y = data

    def die():
        store = open_store(path, mode="a")
        s, traj, _ = runs[2]
        store.write(traj, X=X, y=y, dataset="fig4a", settings=s)
        os.kill(os.getpid(), signal.SIGKILL)

    _wait(_fork(die))
    report = check_store(path)
    assert report.ok and report.journal_good == [runs[2][2]]
    report = salvage(path, str(tmp_path / "out.h5"))
    assert report.salvaged == sorted(r for _, _, r in runs[:3])


def test_check_survives_a_crashing_or_hanging_hdf5(tmp_path, full_store, runs, monkeypatch):
    """The reads run in a child process: a crash or hang costs one run, not the check."""
    crash, hang = runs[0][2], runs[1][2]
    real = _check.read_run

    def flaky(group, run_id=None):
        rid = run_id or group.name.rsplit("/", 1)[-1]
        if rid == crash:  # dies as abruptly as a segfault, without pytest's faulthandler dump
            os.kill(os.getpid(), signal.SIGKILL)
        if rid == hang:
            time.sleep(600)
        return real(group)

    monkeypatch.setattr(_check, "read_run", flaky)
    report = salvage(full_store, str(tmp_path / "out.h5"), timeout=1.0)
    assert "crashed" in report.bad[crash] and "hung" in report.bad[hang]
    assert report.salvaged == sorted({r for _, _, r in runs} - {crash, hang})


def test_header_search_survives_a_crashing_hdf5(tmp_path, full_store, runs, monkeypatch):
    """Opening an object by address on a damaged file happens in the child too: a crash
    there costs that object (reported as unidentified), not the search."""
    with h5py.File(full_store, "r") as f:
        victim = h5py.h5o.get_info(f["runs"][runs[1][2]].id).addr
    real = _check.open_group_at

    def flaky(f, address):
        if address == victim:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(f, address)

    monkeypatch.setattr(_check, "open_group_at", flaky)
    cut = _damaged(tmp_path, full_store, "cut.h5", lambda fh, n: fh.truncate(int(n * 0.7)))
    report = salvage(cut, str(tmp_path / "out.h5"), timeout=5.0)
    assert "crashed" in report.unidentified[f"(an object at byte {victim})"]
    assert runs[0][2] in report.salvaged and report.scanned


def test_salvage_searches_a_store_whose_root_is_damaged(tmp_path, full_store, runs):
    """One byte of the root's metadata (the root group's header, or the global heap with
    its attribute strings) made the whole file "unreadable" although every run was
    intact: the header search now runs there too."""
    with h5py.File(full_store, "r") as f:
        runs_at = h5py.h5o.get_info(f["runs"].id).addr
    heap_at = open(full_store, "rb").read().find(b"GCOL")

    def flip(at, mask):
        def how(fh, n):
            fh.seek(at)
            byte = fh.read(1)[0]
            fh.seek(at)
            fh.write(bytes([byte ^ mask]))
        return how

    for name, how in (("header.h5", flip(runs_at - 18, 0xFF)), ("heap.h5", flip(heap_at + 25, 0x5A))):
        bad = _damaged(tmp_path, full_store, name, how)
        report = salvage(bad, str(tmp_path / f"out-{name}"))
        assert report.root_error and not report.ok, name
        assert report.salvaged == sorted(r for _, _, r in runs), (name, report.describe())
        assert main_check(bad, str(tmp_path / f"cli-{name}"), stream=open(os.devnull, "w")) == 1


def test_an_unreadable_index_is_damage_even_without_the_search(tmp_path, full_store, monkeypatch):
    with h5py.File(full_store, "r") as f:
        runs_at = h5py.h5o.get_info(f["runs"].id).addr
    bad = _damaged(tmp_path, full_store, "idx.h5",
                   lambda fh, n: (fh.seek(runs_at + 8), fh.write(b"\0" * 64)))
    monkeypatch.setattr(_check, "scan_available", lambda: False)
    report = check_store(bad)
    assert not report.ok and report.index_error and report.scan_unavailable and not report.scanned
    assert "not searched for" in report.describe()
    assert main_check(bad, stream=open(os.devnull, "w")) == 2


def test_a_hanging_run_costs_one_timeout(tmp_path, full_store, runs, monkeypatch):
    """A run that hangs when read through the index is not read again by the search."""
    hang = runs[1][2]
    real = _check.read_run

    def slow(group, run_id=None):
        if (run_id or group.name.rsplit("/", 1)[-1]) == hang:
            time.sleep(600)
        return real(group, run_id)

    monkeypatch.setattr(_check, "read_run", slow)
    cut = _damaged(tmp_path, full_store, "cut1.h5", lambda fh, n: fh.truncate(n - 1))
    t0 = time.perf_counter()
    report = check_store(cut, timeout=1.0)
    assert "hung" in report.bad[hang] and not report.unidentified, report.describe()
    assert time.perf_counter() - t0 < 10
    # the CLI's --timeout reaches the check
    from flowkit.cli import main
    t0 = time.perf_counter()
    assert main(["store", "check", cut, "--salvage-to", str(tmp_path / "o.h5"), "--timeout", "1"]) == 1
    assert time.perf_counter() - t0 < 20 and hang not in open_store(str(tmp_path / "o.h5")).run_ids()
    assert main(["store", "check", cut, "--timeout", "0"]) == 2


def test_check_refuses_a_directory_and_a_missing_output_folder(tmp_path, full_store):
    with pytest.raises(StoreError, match="a directory"):
        check_store(tmp_path)
    cut = _damaged(tmp_path, full_store, "half.h5", lambda fh, n: fh.truncate(n // 2))
    with pytest.raises(StoreError, match="does not exist"):
        salvage(cut, str(tmp_path / "missing" / "x.h5"))
    assert main_check(str(tmp_path), stream=open(os.devnull, "w")) == 2


def test_damaged_journal_file_is_set_aside_and_recomputed(tmp_path, runs, data):
    """A crash cannot damage a journal file (it appears by rename, complete); bad storage
    can.  The next writer moves it aside with a warning instead of failing every resume,
    and check_store reports it."""
    path = str(tmp_path / "s.h5")
    X, y = data
    (s0, t0, r0), (s1, t1, r1) = runs[:2]

    def leave_journal():
        store = open_store(path, mode="a")
        store.write(t0, X=X, y=y, dataset="fig4a", settings=s0)
        store.write(t1, X=X, y=y, dataset="fig4a", settings=s1)
        os.kill(os.getpid(), signal.SIGKILL)

    _wait(_fork(leave_journal))
    bad = f"{path}.journal/{r1}.h5"
    with open(bad, "r+b") as fh:
        fh.truncate(os.path.getsize(bad) // 2)
    report = check_store(path)
    assert not report.ok and report.journal_good == [r0] and list(report.journal_bad) == [f"{r1}.h5"]
    with pytest.warns(RuntimeWarning, match=f"{r1}.h5.*corrupt"):
        store = open_store(path, mode="a")
    assert store.run_ids() == [r0] and os.path.exists(bad + ".corrupt")
    store.write(t1, X=X, y=y, dataset="fig4a", settings=s1)
    store.close()
    assert open_store(path).run_ids() == sorted([r0, r1])


def test_write_refuses_a_baseline_or_linearized_trajectory(tmp_path):
    # their states are not the network flow's: stored, they would load back wrong
    X, y = flowkit.datasets.load("fig4a")
    lin = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=10.0, model="linearized",
                            points_per_decade=2)
    with open_store(tmp_path / "s.h5", mode="a") as store:
        with pytest.raises(StoreError, match="linearised"):
            store.write(lin, X=X, y=y, dataset="fig4a",
                        settings=dict(depth=2, alpha=1.0, stopping={"gamma": 10.0}))
        assert len(store) == 0
