"""HDF5 trajectory store: many runs of ``flowkit.integrate`` in one file, crash-safe.

::

    from flowkit.store import integrate_kwargs, open_store, run_id

    settings = dict(depth=3, alpha=0.5, stopping={"gamma": 1e6})
    with open_store("sweep.h5", mode="a") as store:          # the one writer
        rid = run_id(X, y, **settings)
        if rid not in store:                                 # never compute a run twice
            traj = flowkit.integrate(X, y, **integrate_kwargs(settings))
            store.write(traj, X=X, y=y, dataset="fig4a", settings=settings)
        store.commit()                                       # every few seconds in a sweep

    store = open_store("sweep.h5")                           # readers: no lock
    store.summary()                                          # pandas, one row per run
    store.load(rid).at([1e2, 1e3])                           # Trajectory, at() works

    xarray.open_dataset("sweep.h5", group=f"runs/{rid}", engine="h5netcdf")

Modules, one concept each: ``_ids`` (run identity), ``_layout`` (file and run-group
layout), ``_files`` (atomic replacement), ``_lock`` (writer lock), ``_store`` (the
Store and its crash-safety argument), ``_check`` (check and salvage of damaged files).
"""
from ._check import StoreReport, check_store, main_check, salvage
from ._errors import StoreError, StoreLockedError
from ._ids import canonical_settings, data_sha256, integrate_kwargs, run_id
from ._layout import SCHEMA_VERSION
from ._store import SUMMARY_COLUMNS, Store, open_store

__all__ = ["open_store", "Store", "run_id", "canonical_settings", "integrate_kwargs",
           "data_sha256", "check_store", "salvage", "main_check", "StoreReport",
           "StoreError", "StoreLockedError", "SCHEMA_VERSION", "SUMMARY_COLUMNS"]
