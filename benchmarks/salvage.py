"""Salvage from the front of a truncated store (hardening issue: a store cut to <= 50 %
salvaged 0 runs, though most runs' data lay before the cut).

A 48-run store is made by ``flowkit sweep``'s code path (examples/sweep.toml with a
fixed gamma~ for its event rule: workers, journal, copy-and-append commits every
second), cut to 10 .. 99 % of its size and salvaged.  Three ways, in this process:

* before: the layout of the previous release (no flush per run, so heap blocks and
  B-tree nodes take their addresses at the end of each commit) and salvage through the
  run index only;
* scan only: the same old-layout file, salvaged with the object-header search;
* flowkit: the current layout (each run's metadata flushed right after its data) and
  the object-header search.

"bound" is the number of runs whose array chunks all end before the cut, measured on
the intact file with HDF5's chunk index: no salvage can do better (a run's metadata
follows its data, so the run cut in the middle is lost).  Writes salvage.md and
salvage.png/.pdf.

    python benchmarks/salvage.py
"""
import os
import platform
import shutil
import tempfile
from pathlib import Path

import h5py
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from flowkit.analysis.style import SERIES, context, save
from flowkit.store import _check, salvage
from flowkit.sweep import parse_config, run_sweep

HERE = Path(__file__).resolve().parent
FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def make_store(path, old_layout):
    cfg = (HERE.parent / "examples" / "sweep.toml").read_text()
    cfg = cfg.replace("excess_l1 = 0.05", "gamma = 1e5").replace("gamma_max = 1e8", "")
    flush = h5py.File.flush
    if old_layout:  # the writer of the previous release never flushed between runs
        h5py.File.flush = lambda self: None
    try:
        run_sweep(parse_config(cfg), path, workers=2, progress=False, commit_every=1.0)
    finally:
        h5py.File.flush = flush


def data_ends(path):
    """run id -> the last byte of its array chunks in the intact file."""
    ends = {}
    with h5py.File(path, "r") as f:
        for rid, g in f["runs"].items():
            last = 0
            for ds in g.values():
                if ds.chunks is None:
                    continue
                for k in range(ds.id.get_num_chunks()):
                    info = ds.id.get_chunk_info(k)
                    last = max(last, info.byte_offset + info.size)
            ends[rid] = last
    return ends


def salvaged(src, frac, work, scan):
    tag = f"{os.path.basename(src)}-{frac}-{scan}"
    cut = os.path.join(work, f"cut-{tag}.h5")
    shutil.copyfile(src, cut)
    with open(cut, "r+b") as fh:
        fh.truncate(int(os.path.getsize(src) * frac))
    real = _check.scan_available
    _check.scan_available = real if scan else (lambda: False)
    try:
        report = salvage(cut, os.path.join(work, f"out-{tag}.h5"))
    finally:
        _check.scan_available = real
    return len(report.salvaged)


def main():
    rows = []
    with tempfile.TemporaryDirectory() as work:
        old, new = os.path.join(work, "old.h5"), os.path.join(work, "new.h5")
        make_store(old, old_layout=True)
        make_store(new, old_layout=False)
        ends = data_ends(new)
        size = os.path.getsize(new)
        for frac in FRACTIONS:
            bound = sum(end <= int(size * frac) for end in ends.values())
            rows.append((frac, salvaged(old, frac, work, scan=False), salvaged(old, frac, work, scan=True),
                         salvaged(new, frac, work, scan=True), bound))
        sizes = os.path.getsize(old), size
    n = len(ends)
    md = ["# Salvage from a truncated store", "",
          f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"HDF5 {h5py.version.hdf5_version}. A {n}-run sweep store ({sizes[1] / 1e6:.2f} MB; the old layout "
          f"{sizes[0] / 1e6:.2f} MB), cut to a fraction of its size, salvaged with `flowkit.store.salvage`; "
          "every salvaged run passes its checksum and run-id hash. bound: runs whose chunks all end "
          "before the cut.", "",
          "| kept | before (old layout, index only) | scan, old layout | flowkit (layout + scan) | bound |",
          "|---|---|---|---|---|"]
    md += [f"| {f:.0%} | {a} | {b} | {c} | {d} |" for f, a, b, c, d in rows]
    (HERE / "salvage.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    with context():
        fig, ax = plt.subplots(figsize=(5, 3.5))
        pct = [100 * r[0] for r in rows]
        ax.plot(pct, [r[4] for r in rows], "k:", label="bound (chunks before the cut)")
        for col, (label, style) in enumerate((("before (index only)", "^-"), ("scan, old layout", "s--"),
                                              ("flowkit (layout + scan)", "o-")), start=1):
            ax.plot(pct, [r[col] for r in rows], style, color=SERIES[col - 1], label=label)
        ax.set_xlabel("part of the file kept (%)")
        ax.set_ylabel(f"runs salvaged (of {n})")
        ax.legend()
        save(fig, HERE / "salvage")


if __name__ == "__main__":
    main()
