"""Running a sweep: workers integrate, one process writes.

Workers (local processes, or a Dask distributed cluster) run ``execute`` on RunSpecs and
send back whole Trajectories; only the calling process touches the store, which takes
its writer lock for the whole sweep.  Finished runs go to the store's journal at once and
are committed into the HDF5 file every ``commit_every`` seconds (or twice the last
commit's duration, whichever is longer: a commit rewrites the file) and at the end, so a
SIGKILL loses at most the runs in flight, and running the same sweep again skips every
run already stored (run ids are content hashes) and completes the rest.  Ctrl-C cancels
the queued runs, commits the finished ones and returns.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass

from ..events import until_excess_l1
from ..exceptions import FlowkitError
from ..exceptions import IntegrationError
from ..integrator import integrate
from ..store import open_store, run_id

__all__ = ["execute", "run_sweep", "SweepReport", "SchedulerError"]


@dataclass(frozen=True)
class SweepReport:
    total: int          # runs in the configuration (distinct run ids)
    skipped: int        # already in the store
    done: int           # computed now and stored
    failed: int         # of those, stored with status "failed"
    pending: int        # not computed (interrupted, or a worker died)
    interrupted: bool
    seconds: float


def execute(spec):
    """Run one RunSpec: ("ok", Trajectory, None) or ("failed", None, message).

    Only flowkit's own errors count as a failed *result* (deterministic: stored so that
    the run is not attempted again); anything else propagates to the caller.
    """
    solver = dict(rtol=spec.rtol, method=spec.method, points_per_decade=spec.points_per_decade,
                  step=spec.step)
    try:
        if "excess_l1" in spec.stop:
            traj = until_excess_l1(spec.X, spec.y, depth=spec.depth, alpha=spec.alpha,
                                   level=spec.stop["excess_l1"], gamma_max=spec.stop["gamma_max"],
                                   **solver)
        else:
            traj = integrate(spec.X, spec.y, depth=spec.depth, alpha=spec.alpha, save_at=spec.save_at,
                             **spec.stop, **solver)
    except (FlowkitError, IntegrationError) as exc:
        return "failed", None, f"{type(exc).__name__}: {exc}"
    return "ok", traj, None


# One BLAS thread per worker, as Dask's nanny sets for its workers: a threaded BLAS sums
# in a different order (results differ in the last digits), and several workers each
# running several threads only oversubscribe the cores.
_BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def _child_env(extra):
    """os.environ with ``extra`` while child processes are spawned (they copy it)."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _ignore_sigint():
    # Ctrl-C reaches the whole foreground process group: only the writer acts on it
    # (it stops the workers), so that a worker is never caught half-way in its own handler
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _local(todo, workers):
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    with _child_env(_BLAS_ENV):  # the pool spawns its workers at the first submit
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_ignore_sigint)
        futures = {pool.submit(execute, spec): (rid, spec) for rid, spec in todo}
    finished = False
    try:
        for fut in cf.as_completed(futures):
            rid, spec = futures[fut]
            try:
                yield rid, spec, fut.result()
            except cf.process.BrokenProcessPool:
                yield rid, spec, None
        finished = True
    finally:
        if not finished:
            # stopped early (Ctrl-C): the runs in flight are dropped (deterministic, the next
            # sweep computes them) instead of waited for, which could take as long as a run.
            # The pool has no public way to stop its workers before Python 3.14, and
            # shutdown() forgets them: take them first
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


class SchedulerError(FlowkitError):
    """No Dask scheduler answers at the address given."""


CONNECT_TIMEOUT = 10.0  # seconds to wait for a Dask scheduler before giving up


def _connect(address):
    """A distributed.Client on ``address``, or SchedulerError in one line, before anything
    of the sweep exists (its store in particular)."""
    try:
        from distributed import Client
    except ImportError:
        raise SchedulerError("--scheduler needs dask.distributed (pip install distributed)") from None
    try:
        return Client(address, timeout=f"{CONNECT_TIMEOUT}s")
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchedulerError(f"no Dask scheduler answered at {address!r} ({reason[:200]}; "
                             f"waited up to {CONNECT_TIMEOUT:g} s); nothing was created") from None


def _dask(todo, client):
    from distributed import as_completed

    futures = client.map(execute, [spec for _, spec in todo], key=[f"flowkit-{rid}" for rid, _ in todo],
                         pure=False)
    index = {f.key: item for f, item in zip(futures, todo)}
    try:
        for fut in as_completed(futures):
            rid, spec = index[fut.key]
            yield rid, spec, fut.result()
    finally:  # an interrupted sweep leaves nothing queued on the cluster
        client.cancel(futures)


def run_sweep(specs, out, *, scheduler=None, workers=None, progress=True, commit_every=5.0):
    """Run every RunSpec not yet in the store at ``out``; returns a SweepReport.

    ``scheduler``: a Dask scheduler address (tcp://HOST:PORT) or None for local worker
    processes (``workers``, default all cores).  ``progress``: a tqdm bar with ETA.
    """
    t0 = time.perf_counter()
    client = _connect(scheduler) if scheduler else None
    try:
        return _run(specs, out, client, workers, progress, commit_every, t0)
    finally:
        if client is not None:
            client.close()


def _run(specs, out, client, workers, progress, commit_every, t0):
    with open_store(out, mode="a") as store:
        todo, seen = [], set()
        for spec in specs:
            rid = run_id(spec.X, spec.y, **spec.settings)
            if rid not in seen:
                seen.add(rid)
                todo.append((rid, spec))
        total = len(todo)
        todo = [(rid, spec) for rid, spec in todo if rid not in store]
        skipped = total - len(todo)
        done = failed = 0
        interrupted = False
        bar = None
        if progress and todo:
            from tqdm import tqdm
            bar = tqdm(total=len(todo), unit="run", desc="sweep", smoothing=0.1)
        stream = (_dask(todo, client) if client is not None else
                  _local(todo, workers or os.cpu_count() or 1)) if todo else iter(())
        last_commit, commit_cost = time.monotonic(), 0.0
        try:
            for rid, spec, outcome in stream:
                if outcome is None:  # the worker process died: leave the run for next time
                    continue
                status, traj, error = outcome
                if status == "ok":
                    store.write(traj, X=spec.X, y=spec.y, dataset=spec.dataset, settings=spec.settings)
                else:
                    store.write_failure(X=spec.X, y=spec.y, dataset=spec.dataset,
                                        settings=spec.settings, error=error)
                    failed += 1
                done += 1
                if bar is not None:
                    bar.update()
                # a commit rewrites the whole file: keep it under a third of the time
                if time.monotonic() - last_commit >= max(commit_every, 2 * commit_cost):
                    t_c = time.monotonic()
                    store.commit()
                    last_commit = time.monotonic()
                    commit_cost = last_commit - t_c
        except KeyboardInterrupt:
            interrupted = True
        finally:
            try:
                stream.close() if hasattr(stream, "close") else None
                store.commit()
            except KeyboardInterrupt:
                # a second Ctrl-C: leave at once; the finished runs are in the journal
                # (fsynced as each arrived), which the next writer merges
                interrupted = True
                store.close(commit=False)
            if bar is not None:
                bar.close()
    return SweepReport(total=total, skipped=skipped, done=done, failed=failed,
                       pending=total - skipped - done, interrupted=interrupted,
                       seconds=time.perf_counter() - t0)
