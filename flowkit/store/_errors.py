"""Errors of the trajectory store.

Both derive from :class:`flowkit.FlowkitError` (hence ``ValueError``), like every
other error flowkit raises about what it was given -- here, a file.  Messages always
name the file concerned.
"""
from ..exceptions import FlowkitError

__all__ = ["StoreError", "StoreLockedError"]


class StoreError(FlowkitError):
    """The store file (or one run in it) cannot be used: missing, not HDF5, truncated,
    not a flowkit store, written by a newer schema, or failing its checksum."""


class StoreLockedError(StoreError):
    """Another process holds the store's writer lock (``<path>.lock``)."""
