"""Azimuth-pitch coordinates of directions w/‖w‖₂ in R^3 (the paper's Figs. 3-4: "Each
point in Azimuth-Pitch plane represents a normalized classifier w/‖w‖2").

Plain frame, for a unit vector v = w/‖w‖₂, in degrees:

    azimuth = atan2(v2, v1) ∈ [-180, 180],   pitch = asin(v3) ∈ [-90, 90]

(pitch is computed as atan2(v3, hypot(v1, v2)), which keeps full precision near the
poles)

and back: v = (cos p cos a, cos p sin a, sin p).

Centred frame.  The figures zoom on a small part of the sphere, so every function also
takes a ``centre`` c (any non-zero 3-vector; None means the plain frame).  The vectors
are first rotated by the proper rotation

    R(c) = [ĉ; ê; n̂]  (rows),  ĉ = c/‖c‖,
    ê = (-sin a_c, cos a_c, 0)                       the local east at ĉ,
    n̂ = (-sin p_c cos a_c, -sin p_c sin a_c, cos p_c) the local north at ĉ,

(a_c, p_c the plain azimuth and pitch of c), equivalently R(c) = R_y(p_c) R_z(-a_c): turn
about the z axis by -a_c, then about the y axis until ĉ lies on (1, 0, 0).  ĉ, ê, n̂ is
a right-handed orthonormal frame (ê × n̂ = ĉ), so det R = +1.  Then the plain
coordinates of R v are the centred ones:

* c maps to azimuth = pitch = 0;
* moving east of c increases the azimuth, moving north increases the pitch (the zoomed
  picture has the orientation of the plain one, without its cos(pitch) squeeze);
* cos ∠(v, c) = cos(azimuth) cos(pitch) exactly, and near c the map is a local isometry:
  angles between nearby directions equal distances in the plane (radians) up to a
  relative error of the order of the squared distance from c.

At the poles (c ∥ ±e3) the plain azimuth of c is 0 by convention (atan2(0, 0) = 0).
Zero vectors have no direction: they give NaN coordinates.
"""
from __future__ import annotations

import numpy as np

__all__ = ["unit", "centring_rotation", "azimuth_pitch", "direction", "angle",
           "segment_directions", "break_wraps"]


def _as3(W):
    W = np.asarray(W, dtype=float)
    if W.ndim == 0 or W.shape[-1] != 3:
        raise ValueError(f"expected vectors in R^3 (last axis of length 3); got shape {W.shape}")
    return W


def unit(W):
    """``W / ‖W‖₂`` along the last axis; zero (or non-finite) vectors become NaN."""
    W = _as3(W)
    n = np.linalg.norm(W, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        V = W / n
    return np.where((n > 0) & np.isfinite(n), V, np.nan)


def centring_rotation(centre):
    """The proper rotation R(c) of the module docstring (3 x 3, det +1, R ĉ = e1): rows
    ĉ, local east ê, local north n̂."""
    c = unit(centre)
    if c.ndim != 1 or not np.all(np.isfinite(c)):
        raise ValueError(f"centre must be one non-zero finite 3-vector; got {centre!r}")
    a = np.arctan2(c[1], c[0])
    p = np.arctan2(c[2], np.hypot(c[0], c[1]))
    east = np.array([-np.sin(a), np.cos(a), 0.0])
    north = np.array([-np.sin(p) * np.cos(a), -np.sin(p) * np.sin(a), np.cos(p)])
    return np.stack([c, east, north])


def azimuth_pitch(W, centre=None):
    """(azimuth, pitch) in degrees of the directions of ``W`` (..., 3), in the plain
    frame or, with ``centre``, in the frame where the centre is (0, 0).  Each output has
    shape ``W.shape[:-1]``."""
    V = unit(W)
    if centre is not None:
        V = V @ centring_rotation(centre).T
    az = np.degrees(np.arctan2(V[..., 1], V[..., 0]))
    # atan2 rather than asin(v3): asin loses half the digits near the poles
    pitch = np.degrees(np.arctan2(V[..., 2], np.hypot(V[..., 0], V[..., 1])))
    return az, pitch


def direction(azimuth, pitch, centre=None):
    """Unit vectors (..., 3) at ``azimuth``, ``pitch`` (degrees, broadcast together) of
    the plain frame or of the frame centred on ``centre``: the inverse of
    :func:`azimuth_pitch`."""
    a = np.radians(np.asarray(azimuth, dtype=float))
    p = np.radians(np.asarray(pitch, dtype=float))
    a, p = np.broadcast_arrays(a, p)
    V = np.stack([np.cos(p) * np.cos(a), np.cos(p) * np.sin(a), np.sin(p)], axis=-1)
    if centre is not None:
        V = V @ centring_rotation(centre)
    return V


def angle(U, V):
    """Angle in degrees between the directions of U and V (broadcast, last axis 3),
    accurate for small angles too (atan2 of ‖u × v‖ and u·v)."""
    U, V = unit(U), unit(V)
    cross = np.linalg.norm(np.cross(U, V), axis=-1)
    return np.degrees(np.arctan2(cross, np.sum(U * V, axis=-1)))


def segment_directions(a, b, n=65):
    """Directions of the points of the segment [a, b] (n samples, (n, 3)): the arc of
    directions the segment spans, e.g. an edge of a non-unique ℓ1 optimal face."""
    a, b = _as3(a), _as3(b)
    t = np.linspace(0.0, 1.0, int(n))[:, None]
    return unit((1 - t) * a + t * b)


def break_wraps(azimuth, pitch, jump=180.0):
    """Copies of a curve's (azimuth, pitch) with a NaN inserted wherever the azimuth
    jumps by more than ``jump`` degrees (crossing ±180), so a plotted line breaks there
    instead of crossing the whole panel."""
    az = np.asarray(azimuth, dtype=float).ravel()
    pt = np.asarray(pitch, dtype=float).ravel()
    if az.size < 2:
        return az.copy(), pt.copy()
    cut = np.flatnonzero(np.abs(np.diff(az)) > jump) + 1
    return np.insert(az, cut, np.nan), np.insert(pt, cut, np.nan)
