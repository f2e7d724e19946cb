"""Store: many runs in one HDF5 file, written crash-safely through a journal.

Files of a store at ``path``::

    path                 the main file (layout in _layout.py); only ever replaced whole
    path.journal/        finished runs not yet merged: <run_id>.h5, each a one-run store
    path.lock            the writer lock (_lock.py)

Why a journal: HDF5 updates its metadata (B-trees, heaps, superblock) in place, so a
writer killed in the middle of an update can leave a file that no longer opens.  Hence
the main file is never modified in place.  A finished run is written to its own
journal file through ``atomic_file`` (temporary name, fsync, os.replace); ``commit``
merges the journal by copy-on-write: copy main to a temporary sibling, append the
journal's runs to the copy, fsync, os.replace it over main, fsync the directory, and
only then delete the merged journal files.

Crash safety, case by case (SIGKILL, or power loss given the fsyncs):

* killed while writing a run: only a hidden temporary file exists; the run is lost
  (it was in flight) and the temporary file is deleted by the next writer;
* killed during a commit before the rename: main is the old file, the journal is
  intact; the next writer deletes the temporary copy and merges the journal again;
* killed after the rename, before the journal files are deleted: those runs are in
  main *and* in the journal; merging skips runs already in main and deletes the files.

So at every instant main is a complete store file and every journal file is a complete
run, and the set of runs a reader sees (main + journal) only grows.
``open_store(path, mode="a")`` merges any leftover journal: re-running an interrupted
sweep skips the runs already stored (``run_id in store``) and computes the rest, and
since a run id names a deterministic computation the result equals an uninterrupted
sweep.  The copy makes a commit cost O(size of main): commit in batches (every few
seconds of computing) rather than after every run.

Concurrency: one writer (flock on ``path.lock``; a second gets StoreLockedError), any
number of readers (mode "r", no lock).  Readers never hold main open between calls, so
they see each commit; a journal file that vanishes while being read was merged into
main meanwhile and is looked up there again.

Failed runs: ``write_failure`` stores a run that raised (status "failed", the error,
its inputs and no trajectory).  It counts as present for ``run_id in store``, so a
sweep does not retry a deterministic failure forever; a new flowkit version changes
every run id, so an upgrade retries them.  A later successful ``write`` of the same
run id replaces the failure (nothing else is ever replaced).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import warnings

from ..exceptions import ParameterError
from ..trajectory import Trajectory
from ._errors import StoreError
from ._files import atomic_file, fsync_dir, is_temp
from ._ids import RUN_ID_LENGTH, describe_stopping
from ._layout import (append_runs, create_store_file, open_root, read_attrs, read_run,
                      record_failure, record_from_trajectory, run_names,
                      trajectory_from_record)
from ._lock import WriterLock

__all__ = ["Store", "open_store", "SUMMARY_COLUMNS"]

SUMMARY_COLUMNS = ("run_id", "dataset", "depth", "alpha", "stopping", "gamma_final",
                   "margin_final", "status", "error", "nfev", "steps", "seconds",
                   "gamma_consistency", "method", "rtol", "n_points", "flowkit_version",
                   "timestamp", "committed", "verified")
_JSON_ATTRS = ("stopping", "atol", "save_at", "settings", "stats", "versions")
_H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


def open_store(path, mode="r"):
    """Open the trajectory store at ``path``.

    mode "r" (default): read main + journal, no lock, the file must exist.
    mode "a": the one writer; creates the store if missing, takes ``path.lock``
    (StoreLockedError if another process holds it) and merges a leftover journal
    (resume after a crash).  Use as a context manager: leaving it commits and unlocks.
    """
    return Store(path, mode)


class Store:
    """A trajectory store (see the module docstring); get one from ``open_store``.

    Reading: ``run_ids()``, ``run_id in store``, ``len(store)``, ``summary()``,
    ``info(run_id)``, ``load(run_id)``, ``pending``.  Writing (mode "a"):
    ``write(traj, X=, y=, dataset=, settings=)``, ``write_failure(X=, y=, dataset=,
    settings=, error=)``, ``commit()``, ``close()``.
    """

    def __init__(self, path, mode="r"):
        if mode not in ("r", "a"):
            raise ParameterError(f"store mode must be 'r' or 'a'; got {mode!r}")
        self.path = os.fspath(path)
        self.mode = mode
        self.journal = self.path + ".journal"
        self._lock = None
        self._closed = False
        self._main_key = None
        self._main_ids = frozenset()
        self._filed = {}  # run id -> record this writer put in the journal, not yet committed
        if mode == "a":
            folder = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(folder):
                raise StoreError(f"{self.path}: directory {folder} does not exist")
            self._lock = WriterLock(self.path + ".lock", self.path)
            try:
                if os.path.lexists(self.path):
                    self._check_main()
                else:
                    with atomic_file(self.path) as tmp:
                        create_store_file(tmp)
                self._remove_temporaries()
                self.commit()
            except BaseException:
                self._lock.release()
                raise
        else:
            self._check_main()

    # -- lifecycle ----------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self, commit=True):
        """Commit the journal (writer; unless ``commit`` is False, when the journal stays
        for the next writer to merge) and release the lock.  Idempotent."""
        if self._closed:
            return
        try:
            if self.mode == "a" and commit:
                self.commit()
        finally:
            self._closed = True
            if self._lock is not None:
                self._lock.release()

    def __del__(self):
        # no commit here (interpreter shutdown is no time for I/O): the journal stays
        # and the next writer merges it; just free the lock
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

    def __repr__(self):
        state = "closed" if self._closed else f"mode={self.mode!r}"
        return f"<flowkit Store {self.path!r} {state}>"

    # -- what is stored -----------------------------------------------------------
    def run_ids(self):
        """Sorted ids of every run, committed or in the journal."""
        self._require_open()
        return sorted(self._committed() | set(self._journal_ids()))

    def __contains__(self, run_id):
        self._require_open()
        return run_id in self._committed() or os.path.exists(self._journal_file(run_id))

    def __len__(self):
        return len(self.run_ids())

    def __iter__(self):
        return iter(self.run_ids())

    @property
    def pending(self):
        """Ids of the runs in the journal (written, not yet committed)."""
        self._require_open()
        return sorted(set(self._journal_ids()) - self._committed())

    def summary(self, verify=False):
        """pandas DataFrame, one row per run (columns SUMMARY_COLUMNS), oldest first.

        By default it reads attributes only, and its ``verified`` column is False: a run
        whose data were damaged (a flipped bit) shows "ok" until ``load`` checks it.  With
        ``verify=True`` every run's arrays are read and checked against its checksum (as
        ``load`` does; the whole file is read): a run that fails shows status "damaged"
        and the reason in ``error``, as does a run whose attributes cannot be read.
        """
        import pandas as pd

        self._require_open()
        rows, seen = [], set()
        with self._open_main() as f:
            for rid in run_names(f, self.path):
                seen.add(rid)
                if verify:
                    read = lambda rid=rid: (self._verified_attrs(f["runs"][rid]), True)
                else:
                    read = lambda rid=rid: (read_attrs(f["runs"][rid]), True)
                rows.append(self._row(rid, read, verify))
        for rid in self._journal_ids():
            if rid not in seen:
                # via _record: a journal file merged meanwhile is found in main
                if verify:
                    read = lambda rid=rid: self._checked_anywhere(rid)
                else:
                    read = lambda rid=rid: self._attrs_anywhere(rid)
                rows.append(self._row(rid, read, verify))
        df = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
        return df.sort_values(["timestamp", "run_id"], kind="stable").reset_index(drop=True)

    def info(self, run_id):
        """Every attribute of one run, JSON fields decoded, plus the file holding it."""
        rec, where = self._record(run_id, verify=False)
        out = dict(rec.attrs)
        for key in _JSON_ATTRS:
            if isinstance(out.get(key), str):
                out[key] = json.loads(out[key])
        out["file"] = where
        return out

    def load(self, run_id, *, flow=True):
        """The Trajectory of a run, checksum verified.  With ``flow`` (default) it carries
        a Flow rebuilt from the stored data and settings, so ``at()`` works exactly as on
        the original; ``flow=False`` skips that (faster for bulk reading)."""
        rec, where = self._record(run_id, verify=True)
        if not rec.ok:
            raise StoreError(f"{where}: run {run_id} failed ({rec.attrs.get('error')}); "
                             "there is no trajectory to load (store.info gives its inputs)")
        try:
            return trajectory_from_record(rec, flow=flow)
        except (KeyError, ValueError, TypeError) as exc:
            raise StoreError(f"{where}: run {run_id} cannot be rebuilt ({exc})") from None

    # -- writing ------------------------------------------------------------------
    def write(self, traj, *, X, y, dataset, settings):
        """File a finished Trajectory of ``flowkit.integrate(X, y, **settings)`` in the
        journal; returns its run id.  ``settings``: depth, alpha, stopping ({"gamma":
        1e3} etc.) and any non-default method, rtol, atol, points_per_decade, save_at.
        A run already stored is not written again (unless the stored one failed)."""
        self._require_writer()
        if type(traj) is not Trajectory:
            # the layout stores the network flow's state; a baseline or linearised run
            # would load back as a network trajectory and its at() would be wrong
            raise StoreError(f"the store holds network-flow trajectories of flowkit.integrate; "
                             f"got a {type(traj).__name__} (a baseline or the linearised model)")
        rec = record_from_trajectory(traj, X=X, y=y, dataset=dataset, settings=settings)
        if rec.run_id in self and self._status(rec.run_id) == "ok":
            return rec.run_id
        return self._journal_put(rec)

    def write_failure(self, *, X, y, dataset, settings, error):
        """Record that the run raised ``error`` (exception or message); returns its id.
        Store only deterministic failures (FlowkitError, IntegrationError): a stored
        failure is never retried by the same flowkit version."""
        self._require_writer()
        rec = record_failure(X=X, y=y, dataset=dataset, settings=settings, error=error)
        if rec.run_id in self:
            return rec.run_id
        return self._journal_put(rec)

    def commit(self):
        """Merge the journal into the main file (copy-on-write, atomic replace); returns
        the number of runs added or replaced.  Runs this writer filed are merged from
        its records in memory; a journal file left by another (crashed) writer is read
        back, and if it fails its checksum (which a crash cannot produce) it is renamed
        to *.corrupt with a warning."""
        self._require_writer()
        journal = self._journal_ids()
        if not journal:
            return 0
        good = []
        for rid in journal:
            path = self._journal_file(rid)
            if rid in self._filed:
                # written by this writer: merge the record it wrote (verified when made)
                # rather than read the file back
                good.append(self._filed[rid])
                continue
            try:
                rec = self._read_journal(rid)
                reason = rec.verify()
            except StoreError as exc:
                reason = str(exc)
            if reason:
                os.replace(path, path + ".corrupt")
                warnings.warn(f"{path}: damaged journal file moved to {path}.corrupt, "
                              f"its run will be recomputed ({reason})", RuntimeWarning, stacklevel=2)
                continue
            good.append(rec)
        with self._open_main() as f:
            committed = set(run_names(f, self.path))
            replace = [r.run_id for r in good if r.run_id in committed and r.ok
                       and self._attr(f, r.run_id, "status") != "ok"]
        todo = [r for r in good if r.run_id not in committed or r.run_id in replace]
        if todo:
            with atomic_file(self.path) as tmp:
                shutil.copyfile(self.path, tmp)
                append_runs(tmp, todo, replace)
        for rec in good:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._journal_file(rec.run_id))
            self._filed.pop(rec.run_id, None)
        fsync_dir(self.journal)
        return len(todo)

    # -- internals ------------------------------------------------------------------
    def _require_open(self):
        if self._closed:
            raise StoreError(f"{self.path}: store is closed")

    def _require_writer(self):
        self._require_open()
        if self.mode != "a":
            raise StoreError(f"{self.path}: opened read-only; open_store(path, mode='a') to write")

    def _check_main(self):
        with self._open_main() as f:
            run_names(f, self.path)

    @contextlib.contextmanager
    def _open_main(self):
        f = open_root(self.path)
        try:
            yield f
        finally:
            f.close()

    def _committed(self):
        """Run ids in main, re-read only when the file was replaced."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise StoreError(f"{self.path}: store file disappeared") from None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key != self._main_key:
            with self._open_main() as f:
                self._main_ids = frozenset(run_names(f, self.path))
            self._main_key = key
        return self._main_ids

    def _journal_file(self, run_id):
        return os.path.join(self.journal, f"{run_id}.h5")

    def _journal_ids(self):
        try:
            names = os.listdir(self.journal)
        except FileNotFoundError:
            return []
        return sorted(n[:-3] for n in names
                      if n.endswith(".h5") and len(n) == RUN_ID_LENGTH + 3 and not n.startswith("."))

    def _journal_put(self, rec):
        if not os.path.isdir(self.journal):
            os.makedirs(self.journal, exist_ok=True)
            fsync_dir(os.path.dirname(os.path.abspath(self.journal)))
        with atomic_file(self._journal_file(rec.run_id)) as tmp:
            create_store_file(tmp, [rec])
        self._filed[rec.run_id] = rec
        return rec.run_id

    def _remove_temporaries(self):
        """Delete temporary files of writers that died (we hold the lock: none is live)."""
        head, tail = os.path.split(os.path.abspath(self.path))
        for name in os.listdir(head):
            if is_temp(name, tail):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(head, name))
        if os.path.isdir(self.journal):
            for name in os.listdir(self.journal):
                if name.startswith(".") and name.endswith(".tmp"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.journal, name))

    def _read_journal(self, rid, attrs_only=False):
        path = self._journal_file(rid)
        with contextlib.closing(open_root(path)) as f:
            names = run_names(f, path)
            if names != [rid]:
                raise StoreError(f"{path}: journal file should hold run {rid}, holds {names}")
            try:
                g = f["runs"][rid]
                return read_attrs(g) if attrs_only else read_run(g)
            except _H5_ERRORS as exc:
                raise StoreError(f"{path}: run {rid} is damaged ({exc})") from None

    def _attrs_anywhere(self, rid):
        attrs, where = self._record(rid, verify=False, attrs_only=True)
        return attrs, where == self.path

    def _checked_anywhere(self, rid):
        rec, where = self._record(rid, verify=True)
        return rec.attrs, where == self.path

    def _verified_attrs(self, group):
        try:
            rec = read_run(group)
        except _H5_ERRORS as exc:
            raise StoreError(f"{self.path}: run {group.name} is damaged ({exc})") from None
        return self._verified(rec, self.path, True).attrs

    @staticmethod
    def _attr(f, rid, key):
        try:
            return read_attrs(f["runs"][rid]).get(key)
        except _H5_ERRORS:
            return None

    def _status(self, rid):
        try:
            return self._record(rid, verify=False, attrs_only=True)[0].get("status")
        except StoreError:
            return None

    def _record(self, run_id, *, verify, attrs_only=False):
        """(record or attrs, file) of a run: main first, then the journal; a journal
        file that vanished was just merged, so main is asked again."""
        self._require_open()
        for _ in range(3):
            with self._open_main() as f:
                try:
                    present = run_id in f["runs"]
                except _H5_ERRORS as exc:
                    raise StoreError(f"{self.path}: cannot look up run {run_id} ({exc})") from None
                if present:
                    try:
                        g = f["runs"][run_id]
                        rec = read_attrs(g) if attrs_only else read_run(g)
                    except _H5_ERRORS as exc:
                        raise StoreError(f"{self.path}: run {run_id} is damaged ({exc}); "
                                         f"`flowkit store check {self.path}` salvages the rest") from None
                    return self._verified(rec, self.path, verify), self.path
            jf = self._journal_file(run_id)
            if not os.path.exists(jf):
                break
            try:
                rec = self._read_journal(run_id, attrs_only)
            except StoreError:
                if os.path.exists(jf):
                    raise
                continue  # merged into main while we looked
            return self._verified(rec, jf, verify), jf
        raise StoreError(f"{self.path}: no run {run_id!r} in this store")

    @staticmethod
    def _verified(rec, where, verify):
        if verify:
            reason = rec.verify()
            if reason:
                raise StoreError(f"{where}: run {rec.run_id} is damaged: {reason}; "
                                 f"`flowkit store check` salvages the intact runs")
        return rec

    def _row(self, rid, read, verified=False):
        """Summary row of one run; ``read()`` -> (attributes, committed)."""
        row = dict.fromkeys(SUMMARY_COLUMNS)
        row.update(run_id=rid, verified=verified)
        try:
            at, row["committed"] = read()
            stats = json.loads(at.get("stats") or "{}")
            stopping = json.loads(at["stopping"])
        except (StoreError, *_H5_ERRORS) as exc:
            row.update(status="damaged", error=str(exc), timestamp="", verified=verified)
            return row
        row.update({k: at.get(k) for k in ("dataset", "depth", "alpha", "gamma_final", "margin_final",
                                           "status", "error", "method", "rtol", "n_points",
                                           "flowkit_version", "timestamp")})
        row.update(stopping=describe_stopping(stopping), nfev=stats.get("nfev"),
                   steps=stats.get("steps"), seconds=stats.get("seconds"),
                   gamma_consistency=stats.get("invariants", {}).get("gamma_consistency", math.nan))
        return row
