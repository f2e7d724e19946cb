"""Check a store file and salvage its intact runs: the ``flowkit store check FILE`` command.

A store only changes by atomic replacement (_store.py), so damage comes from outside:
a partial copy, a full disk during someone else's copy, bad storage.  ``check_store``
reports what is readable; ``salvage`` copies every run that reads back and passes its
checksum (and whose id still hashes its data and settings) into a new store file.

* **Truncated files.**  HDF5 refuses a file shorter than the end-of-file address its
  superblock records.  The check reads that address from the superblock, pads a
  temporary copy with zeros up to it and opens the copy: the runs whose metadata and
  data lay before the cut read back and pass their checksums; those that reached
  beyond it fail them (zeros) and are reported.  The run index is usually lost with
  the cut (every commit rewrites it at the end of the file), so a truncated file, or
  one whose index cannot be read, is also searched for run groups by their object
  headers (_scan.py).  Each run's metadata is flushed right after its data
  (_layout.write_run), so every run before the cut is found whole but the one the cut
  goes through (benchmarks/salvage.py: 23–24 of 48 at 50 %, 43 at 90 %).
* **Damaged metadata can crash or hang the HDF5 library** (seen while testing: an
  attribute read on a file with a zeroed block never returned).  So every read of the
  damaged file happens in a child process; the parent reads nothing from it and keeps
  its own state.  If the child dies, or is silent for ``timeout`` seconds on one
  item, the parent kills it, records that item as unreadable and starts a new child
  that resumes after it.
* The journal directory ``<path>.journal`` is checked and salvaged too (its files are
  one-run stores): runs not yet committed are runs all the same.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass, field

import h5py

from ._errors import StoreError
from ._files import atomic_file
from ._layout import new_store_file, open_root, read_attrs, read_run, run_names, write_run
from ._scan import object_headers, open_group_at, scan_available

__all__ = ["StoreReport", "check_store", "salvage", "main_check", "stored_eof"]

_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass
class StoreReport:
    """What ``check_store`` found.  Run ids map to the reason they are unusable."""

    path: str
    root_error: str | None = None     # why the file could not be opened as a store, if so
    truncated: tuple | None = None    # (size on disk, size the superblock records), if short
    schema_version: int | None = None
    index_error: str | None = None    # why the /runs index could not be listed, if so
    scanned: bool = False             # runs were also searched for by their object headers
    scan_unavailable: bool = False    # ... were to be, but this HDF5 cannot open by address
    good: list = field(default_factory=list)           # runs in the main file that verify
    bad: dict = field(default_factory=dict)            # run id -> reason (main file)
    unidentified: dict = field(default_factory=dict)   # "(a group at byte N ...)" -> reason:
    # objects the header search found but could not name (a run cut by the truncation)
    journal_good: list = field(default_factory=list)   # runs in <path>.journal that verify
    journal_bad: dict = field(default_factory=dict)    # journal file -> reason
    salvaged_to: str | None = None
    salvaged: list = field(default_factory=list)

    @property
    def ok(self):
        """Nothing is wrong: the file opens, is complete and every run verifies."""
        return (self.root_error is None and self.truncated is None and self.index_error is None
                and not self.bad and not self.journal_bad)

    @property
    def readable(self):
        """Ids of every intact run (main and journal, each once)."""
        return sorted(set(self.good) | set(self.journal_good))

    def describe(self):
        out = io.StringIO()
        p = lambda *a: print(*a, file=out)  # noqa: E731
        p(f"store {self.path}: {'OK' if self.ok else 'DAMAGED'}")
        if self.truncated:
            size, eof = self.truncated
            p(f"  truncated: {size} bytes on disk, the HDF5 superblock records {eof} "
              f"({eof - size} bytes missing); read from a zero-padded copy")
        if self.index_error:
            p(f"  run index unreadable: {self.index_error.split('; `flowkit store check')[0]}")
        if self.scanned:
            p("  runs searched for by their HDF5 object headers as well as through the run index")
        if self.scan_unavailable:
            p("  runs the index lost were not searched for: this HDF5 build has no H5Oopen_by_token")
        if self.root_error:
            p(f"  main file unreadable as a store: {self.root_error}")
        if self.root_error is None or self.good or self.bad:
            p(f"  main file: schema {self.schema_version}, {len(self.good)} intact runs, {len(self.bad)} damaged")
        for rid, why in sorted(self.bad.items()):
            p(f"    damaged run {rid}: {why}")
        for what, why in sorted(self.unidentified.items()):
            p(f"    unidentified {what}: {why}")
        if self.journal_good or self.journal_bad:
            p(f"  journal (uncommitted runs): {len(self.journal_good)} intact, {len(self.journal_bad)} damaged")
            for name, why in sorted(self.journal_bad.items()):
                p(f"    damaged journal file {name}: {why}")
        if self.salvaged_to:
            p(f"  salvaged {len(self.salvaged)} runs to {self.salvaged_to}")
        return out.getvalue()


# ----------------------------------------------------------------------- truncation
def stored_eof(path):
    """(size on disk, size the HDF5 superblock records), or None if the file has no
    HDF5 signature.  The superblock is searched at 0, 512, 1024, ... as HDF5 does (a
    user block may precede it); the recorded end-of-file address is what HDF5 checks
    the physical size against ("truncated file: ... stored_eof")."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        base = 0
        while True:
            fh.seek(base)
            head = fh.read(64)
            if head[:8] == _SIGNATURE:
                break
            base = 512 if base == 0 else 2 * base
            if base + 8 > size:
                return None
    try:
        version = head[8]
        if version in (0, 1):
            # signature 8, four version bytes + reserved, sizeof offsets (byte 13), sizeof
            # lengths, reserved, leaf K 2, internal K 2, flags 4 [v1: indexed K 2, reserved 2],
            # then the addresses: base, free-space info, end of file, driver info
            so = head[13]
            eof_at = 24 + (4 if version == 1 else 0) + 2 * so
        elif version in (2, 3):
            # signature 8, version, sizeof offsets (byte 9), sizeof lengths, flags, then
            # the addresses: base, superblock extension, end of file, root object header
            so = head[9]
            eof_at = 12 + 2 * so
        else:
            return None
        eof = struct.unpack_from({4: "<I", 8: "<Q"}[so], head, eof_at)[0]
    except (IndexError, KeyError, struct.error):
        return None
    return size, eof


def _readable_copy(path, workdir):
    """(path to read, truncation info): a zero-padded copy when the file is short."""
    info = stored_eof(path)
    if info is None or info[1] <= info[0] or info[1] > info[0] + (1 << 40):
        return path, None
    copy = os.path.join(workdir, "padded.h5")
    shutil.copyfile(path, copy)
    with open(copy, "r+b") as fh:
        fh.truncate(info[1])  # sparse zeros up to the recorded end of file
    return copy, info


# ----------------------------------------------------------------------- isolated reading
def _worker(files, order, skip_files, skip_runs, want_records, scan, conn):
    """Child process: open each file, list its runs, read and verify each run, close,
    sending a message *before* every step so the parent knows what a crash interrupted.
    Files in ``scan`` (truncated ones), and any whose root or run index cannot be read,
    are also searched for run groups by their object headers (_scan.py): those the index
    lost.  Groups already read through the index are not read again."""
    for i in order:
        if i in skip_files:
            continue
        path = files[i]
        conn.send(("open", i))
        f, root_error = _open(path)
        if f is None:
            conn.send(("root", i, root_error, None, None, False))
            continue
        schema = index_error = None
        names, known = [], {_address(f)}
        if root_error is None:
            try:
                schema = read_attrs(f).get("schema_version")
                names = run_names(f, path)
                known.add(_address(f["runs"]))
            except StoreError as exc:
                index_error = str(exc)
            except Exception as exc:  # noqa: BLE001 - the root's own attributes are damaged
                root_error = f"{path}: damaged store root ({type(exc).__name__}: {exc})"
        conn.send(("root", i, root_error, schema, index_error, True))
        for rid in names:
            if (i, rid) in skip_runs:
                continue
            try:
                group = f["runs"][rid]
                address = _address(group)
            except Exception as exc:  # noqa: BLE001
                group, address, opened = None, None, exc
            conn.send(("run", i, rid, address))
            known.add(address)
            try:
                if group is None:
                    raise opened
                rec = read_run(group)
                reason = rec.verify()
            except Exception as exc:  # noqa: BLE001 - any failure means: not salvageable
                rec, reason = None, f"unreadable ({type(exc).__name__}: {exc})"
            conn.send(("result", i, rid, rid, reason, rec if (want_records and not reason) else None, address))
        if (i in scan or index_error or root_error) and scan_available():
            conn.send(("scan", i))
            for address in object_headers(path, _base(path)):
                key = f"@{address}"
                if address in known or (i, key) in skip_runs:
                    continue
                conn.send(("run", i, key, address))
                rid, reason, rec = _scanned(f, address)
                if rid is None:  # not a run group (a dataset, a stray signature)
                    conn.send(("skip", i, key))
                    continue
                conn.send(("result", i, key, rid, reason, rec if (want_records and not reason) else None, address))
        conn.send(("close", i))
        f.close()
        conn.send(("closed", i))
    conn.send(("end",))
    conn.close()


def _open(path):
    """(h5py File, None) for a store; (File, why) for an HDF5 file whose store root is
    damaged (its runs may still be found by their headers); (None, why) otherwise."""
    try:
        return open_root(path, need_runs=False), None
    except StoreError as exc:
        try:
            return h5py.File(path, "r"), str(exc)
        except Exception:  # noqa: BLE001 - not even HDF5: nothing to search
            return None, str(exc)


def _address(obj):
    try:
        return h5py.h5o.get_info(obj.id).addr
    except Exception:  # noqa: BLE001
        return None


def _scanned(f, address):
    """(run id, reason or None, record) of the run group at ``address``; run id None
    if there is no run group there."""
    group = open_group_at(f, address)
    if group is None:
        return None, None, None
    try:
        rid = read_attrs(group).get("run_id")
    except Exception:  # noqa: BLE001 - attributes cut by the truncation
        return f"(a group at byte {address})", "its attributes cannot be read (cut or damaged)", None
    if not isinstance(rid, str) or "status" not in group.attrs:
        return None, None, None
    try:
        rec = read_run(group, rid)
        reason = rec.verify()
    except Exception as exc:  # noqa: BLE001
        rec, reason = None, f"unreadable ({type(exc).__name__}: {exc})"
    return rid, reason, rec


def _base(path):
    """Offset of the superblock (0 unless a user block precedes it)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        base = 0
        while head and head != _SIGNATURE:
            base = 512 if base == 0 else 2 * base
            fh.seek(base)
            head = fh.read(8)
    return base


def _inspect(files, order, timeout, on_record=None, scan=()):
    """Read ``files`` (in ``order``) in child processes; returns
    {i: [root_error, schema, {rid: reason or None}, index_error]}.  ``on_record(record)``
    receives every intact record, in this process; the files numbered in ``scan`` are
    searched for run groups the index does not reach.  A run found twice (by the index
    and by its header, or a stale copy) is intact if any copy is."""
    methods = multiprocessing.get_all_start_methods()
    # fork: no re-import in the child; this process holds none of the damaged files open
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    results = {}
    skip_files, skip_runs = set(), set()
    while len(skip_files) < len(files):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, daemon=True,
                           args=(files, order, skip_files, skip_runs, on_record is not None, set(scan), child))
        proc.start()
        child.close()
        step = None  # what the child is doing now, per its last message
        try:
            while True:
                if not parent.poll(timeout):
                    raise TimeoutError
                msg = parent.recv()
                kind, i = msg[0], (msg[1] if len(msg) > 1 else None)
                if kind == "end":
                    skip_files.update(range(len(files)))
                    break
                if kind == "root":
                    _, i, err, schema, index_error, opened = msg
                    results.setdefault(i, [err, schema, {}, index_error])
                    if not opened:
                        skip_files.add(i)
                elif kind == "result":
                    _, i, key, rid, reason, rec, address = msg
                    runs = results[i][2]
                    if runs.get(rid, "unseen") is not None:
                        runs[rid] = reason
                    skip_runs.update({(i, key), (i, f"@{address}")})
                    if rec is not None:
                        on_record(rec)
                elif kind == "skip":
                    skip_runs.add((i, msg[2]))
                elif kind == "closed":
                    skip_files.add(i)
                step = msg if kind in ("open", "run", "close") else None
        except (EOFError, OSError, TimeoutError) as exc:
            how = (f"no answer within {timeout:g} s (the HDF5 library hung)" if isinstance(exc, TimeoutError)
                   else "the HDF5 library crashed reading it")
            if step is None or step[0] == "close":
                # died outside any read (or closing): the file's runs are all recorded
                i = step[1] if step else next(j for j in order if j not in skip_files)
                results.setdefault(i, [f"cannot be read: {how}", None, {}, None])
                skip_files.add(i)
            elif step[0] == "open":
                results[step[1]] = [f"cannot be opened: {how}", None, {}, None]
                skip_files.add(step[1])
            else:
                _, i, key, address = step
                label = f"(an object at byte {key[1:]})" if key.startswith("@") else key
                results[i][2].setdefault(label, how)
                skip_runs.update({(i, key), (i, f"@{address}")})  # the scan skips it too
        finally:
            parent.close()
            if proc.is_alive():
                proc.kill()
            proc.join()
    return results


# ----------------------------------------------------------------------- public
def _journal_files(path):
    journal = os.fspath(path) + ".journal"
    try:
        names = sorted(n for n in os.listdir(journal) if n.endswith(".h5") and not n.startswith("."))
    except FileNotFoundError:
        return []
    return [os.path.join(journal, n) for n in names]


def _run(path, timeout, writer=None):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise StoreError(f"{path}: no such file")
    if os.path.isdir(path):
        raise StoreError(f"{path}: a directory, not a store file")
    report = StoreReport(path=path)
    journal = _journal_files(path)
    with tempfile.TemporaryDirectory(prefix="flowkit-check-") as work:
        main, report.truncated = _readable_copy(path, work)
        files = [main] + journal
        # journal first: a journalled run is either a copy of a committed one or the
        # success that replaces a committed failure, so the first copy seen is the one
        order = list(range(1, len(files))) + [0]
        seen = {}  # run id -> status of the copy written

        def keep(rec):
            # an "ok" copy beats a "failed" one, as in the store: a success replaces a
            # failure, and the failure's freed header can still be found by the scan
            status = seen.get(rec.run_id)
            if status is None or (status != "ok" and rec.ok):
                writer(rec, replace=status is not None)
                seen[rec.run_id] = rec.attrs.get("status")

        results = _inspect(files, order, timeout, keep if writer else None,
                           scan={0} if report.truncated else ())
    err, schema, runs, index_error = results.get(0, ["not inspected", None, {}, None])
    report.index_error = index_error.replace(main, path) if index_error else None
    needed = report.truncated is not None or report.index_error is not None or report.root_error is not None
    report.scanned = needed and scan_available()
    report.scan_unavailable = needed and not scan_available()
    # the error names the file read (maybe the padded copy) and advertises this very check
    report.root_error = err.replace(main, path).split("; `flowkit store check")[0] if err else None
    report.schema_version = schema
    report.good = sorted(r for r, why in runs.items() if why is None)
    report.bad = {r: why for r, why in runs.items() if why is not None and not r.startswith("(")}
    report.unidentified = {r: why for r, why in runs.items() if r.startswith("(")}
    for i, jf in enumerate(journal, start=1):
        jerr, _, jruns, jindex = results.get(i, ["not inspected", None, {}, None])
        jerr = jerr or jindex
        name = os.path.basename(jf)
        if jerr:
            report.journal_bad[name] = jerr
        for rid, why in jruns.items():
            if why is None:
                report.journal_good.append(rid)
            else:
                report.journal_bad[name] = why
    report.journal_good.sort()
    return report


def check_store(path, *, timeout=60.0):
    """StoreReport of the store at ``path`` (main file and journal); reads only.
    ``timeout``: seconds one open or one run may take before it counts as hung."""
    return _run(path, timeout)


def salvage(path, out_path, *, timeout=60.0):
    """Copy every intact run of the store at ``path`` (main file and journal) into a new
    store ``out_path`` (which must not exist); returns the StoreReport with
    ``salvaged_to`` and ``salvaged`` filled in."""
    path, out_path = os.fspath(path), os.fspath(out_path)
    if os.path.lexists(out_path):
        raise StoreError(f"{out_path}: exists; salvage writes a new file only")
    if os.path.abspath(out_path) == os.path.abspath(path):
        raise StoreError(f"{path}: salvage must write to a different file")
    folder = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(folder):
        raise StoreError(f"{out_path}: directory {folder} does not exist")
    written = []
    with atomic_file(out_path) as tmp:
        with new_store_file(tmp) as runs:

            def writer(rec, replace=False):
                if replace:
                    del runs[rec.run_id]
                else:
                    written.append(rec.run_id)
                write_run(runs, rec)

            report = _run(path, timeout, writer)
    report.salvaged_to, report.salvaged = out_path, sorted(written)
    return report


def _free_name(path):
    stem, ext = os.path.splitext(path)
    candidate, k = f"{stem}.salvaged{ext or '.h5'}", 1
    while os.path.lexists(candidate):
        candidate, k = f"{stem}.salvaged-{k}{ext or '.h5'}", k + 1
    return candidate


def main_check(path, salvage_to=None, *, stream=None, timeout=60.0):
    """``flowkit store check FILE [--salvage-to OUT]``: print the report; if the store is
    damaged, salvage its intact runs to ``salvage_to`` (default: FILE.salvaged.h5, or
    the next free name).  Returns the exit status: 0 intact, 1 damaged and salvaged,
    2 nothing readable or no such file.  The report goes to ``stream`` (stdout), errors to
    stderr (or to ``stream`` when one is given)."""
    errors = sys.stderr if stream is None else stream
    stream = sys.stdout if stream is None else stream
    try:
        report = check_store(path, timeout=timeout)
        if not report.ok:
            if report.readable:
                report = salvage(path, salvage_to or _free_name(os.fspath(path)), timeout=timeout)
            elif salvage_to:
                print(f"nothing readable to salvage to {salvage_to}", file=errors)
    except StoreError as exc:
        print(f"flowkit: error: {exc}", file=errors)
        return 2
    print(report.describe(), end="", file=stream)
    if report.ok:
        return 0
    return 1 if report.salvaged else 2

