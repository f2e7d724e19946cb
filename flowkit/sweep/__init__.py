"""Sweeps: a TOML grid of datasets × depths × α × stopping rules, run by local worker
processes or a Dask cluster into one HDF5 store (``config``: what to run; ``runner``:
how).  Command line: ``flowkit sweep CONFIG --out FILE.h5``."""
from .config import ConfigError, RunSpec, load_config, parse_config
from .runner import SchedulerError, SweepReport, execute, run_sweep

__all__ = ["ConfigError", "RunSpec", "load_config", "parse_config", "SweepReport", "execute",
           "run_sweep", "SchedulerError"]
