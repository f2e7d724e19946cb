"""The paper's figures (Moroshko et al. 2020, Figs. 3-5) and the checks of its theorems,
as pure functions of plain arrays.

Nothing here integrates or solves: the pipeline reads trajectories and max-margin points
from flowkit's HDF5 stores and passes numpy arrays in.  Every function returns a
``matplotlib.figure.Figure`` (built without pyplot, in :func:`flowkit.analysis.style.context`);
the panel functions draw into an ``ax`` they are given (or a new figure when it is None)
and return its figure.  Save with :func:`flowkit.analysis.style.save`.

Sphere panels plot directions w/‖w‖₂ in azimuth-pitch coordinates
(:mod:`flowkit.analysis.sphere`), optionally in the frame centred on a chosen direction.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import sphere, style

__all__ = ["sphere_panel", "sphere_overview", "fig3", "fig4", "fig5a", "fig5b",
           "theorem_panel", "depth_law"]

R = style.ROLE
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
PANEL_LETTERS = "abcdefgh"


def _styled(fn):
    """Run a figure function inside the style's rcParams (sizes are read when artists
    are created, so the whole function body must run in the context)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with style.context():
            return fn(*args, **kwargs)
    return wrapper


def _ax_or_new(ax, figsize=(5.0, 4.2)):
    if ax is None:
        fig = Figure(figsize=figsize)
        return fig.add_subplot()
    if isinstance(ax, Figure):
        return ax.axes[0] if ax.axes else ax.add_subplot()
    if isinstance(ax, Axes):
        return ax
    raise TypeError(f"expected a matplotlib Axes, Figure or None; got {type(ax).__name__}")


def _num(x):
    """Compact label text for a number: 0.5, 2, 100, 10^4, 3×10^-5 (mathtext)."""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    e = math.floor(math.log10(abs(x)))
    if -3 <= e <= 3:
        return f"{x:.3g}"
    m = x / 10.0 ** e
    if abs(m - round(m)) < 1e-9 and round(m) == 1:
        return f"$10^{{{e}}}$"
    return f"${m:.3g}\\times10^{{{e}}}$"


def _decimals(ci):
    """Decimals that show a confidence half-width to two significant digits."""
    if ci is None or not np.isfinite(ci) or ci <= 0:
        return 3
    return int(min(6, max(0, 1 - math.floor(math.log10(ci)))))


def _estimate(value, ci):
    """'1.002 ± 0.004' for a half-width, '1.002 [0.995, 1.01]' for an interval."""
    if ci is None:
        return f"{value:.3f}"
    ci = np.asarray(ci, dtype=float)
    if ci.ndim == 0:
        d = _decimals(float(ci))
        return f"{value:.{d}f} ± {float(ci):.{d}f}"
    lo, hi = float(ci[0]), float(ci[1])
    d = _decimals((hi - lo) / 2)
    return f"{value:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"


def _positive(x, y):
    """(x, y) as float arrays with non-positive or non-finite pairs masked (log axes)."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length; got {x.shape} and {y.shape}")
    bad = ~(np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0))
    return np.where(bad, np.nan, x), np.where(bad, np.nan, y)


# --------------------------------------------------------------------------- spheres

def _ap(W, centre):
    return sphere.azimuth_pitch(np.atleast_2d(np.asarray(W, dtype=float)), centre)


def _hull_2d(P):
    """Indices of the convex hull of 2-D points P, counter-clockwise (monotone chain)."""
    order = sorted(range(len(P)), key=lambda i: (P[i, 0], P[i, 1]))

    def turn(o, a, b):
        return (P[a, 0] - P[o, 0]) * (P[b, 1] - P[o, 1]) - (P[a, 1] - P[o, 1]) * (P[b, 0] - P[o, 0])

    lower, upper = [], []
    for i in order:
        while len(lower) >= 2 and turn(lower[-2], lower[-1], i) <= 0:
            lower.pop()
        lower.append(i)
    for i in reversed(order):
        while len(upper) >= 2 and turn(upper[-2], upper[-1], i) <= 0:
            upper.pop()
        upper.append(i)
    return lower[:-1] + upper[:-1]


def _face_outline(V):
    """Directions along the boundary of the convex set spanned by the vertices V (k, 3):
    (m, 3) unit vectors, closed for a polygon; also whether it is a polygon."""
    V = np.unique(np.asarray(V, dtype=float).reshape(-1, 3), axis=0)
    if len(V) == 1:
        return sphere.unit(V), False
    M = V - V.mean(axis=0)
    _, s, Wt = np.linalg.svd(M, full_matrices=False)
    scale = max(np.abs(V).max(), 1e-300)
    rank = int(np.sum(s > 1e-9 * scale))
    if rank <= 1:
        t = M @ Wt[0]
        return sphere.segment_directions(V[np.argmin(t)], V[np.argmax(t)]), False
    ring = _hull_2d(M @ Wt[:2].T)
    edges = [sphere.segment_directions(V[ring[i]], V[ring[(i + 1) % len(ring)]])
             for i in range(len(ring))]
    return np.concatenate(edges), True


def _frame_labels(ax, centre):
    where = "" if centre is None else " (centred frame)"
    ax.set_xlabel(f"azimuth{where} [°]")
    ax.set_ylabel(f"pitch{where} [°]")


def _alpha_colours(alphas):
    """{α: colour}, by increasing α, so the same α has the same colour in every panel."""
    return {a: style.series_colour(i) for i, a in enumerate(sorted(set(float(a) for a in alphas)))}


def _limits(points, pad=0.08, min_pad=0.5):
    """Padded (xlim, ylim) around the finite points of a list of (az, pitch) arrays."""
    az = np.concatenate([np.ravel(a) for a, _ in points]) if points else np.array([])
    pt = np.concatenate([np.ravel(p) for _, p in points]) if points else np.array([])
    ok = np.isfinite(az) & np.isfinite(pt)
    if not ok.any():
        return None
    out = []
    for v in (az[ok], pt[ok]):
        lo, hi = float(v.min()), float(v.max())
        p = max(pad * (hi - lo), min_pad)
        out.append((lo - p, hi + p))
    return tuple(out)


def _draw_sphere_panel(ax, *, trajectories, start, l2, l1, qpath_w, cross, q_points,
                       l1_face=None, l2D_points=None, centre=None, title="", depth=None,
                       limits=None, colours=None):
    """Draw a sphere panel; return its legend handles (α curves first, by α)."""
    colours = colours or _alpha_colours(a for a, _ in trajectories)
    core = []            # what the view is fitted to: the dynamics and its landmarks
    alpha_handles = []
    for alpha, W in trajectories:
        az, pt = _ap(W, centre)
        core.append((az, pt))
        col = colours.get(float(alpha)) or style.series_colour(len(alpha_handles))
        last = np.flatnonzero(np.isfinite(az) & np.isfinite(pt))
        az, pt = sphere.break_wraps(az, pt)
        h, = ax.plot(az, pt, color=col, lw=1.6, zorder=2, label=f"α = {_num(alpha)}")
        if len(last):  # where the run stopped
            ax.plot(core[-1][0][last[-1]], core[-1][1][last[-1]], ls="none", marker="o",
                    ms=3.5, color=col, zorder=2.5)
        alpha_handles.append((float(alpha), h))
    handles = [h for _, h in sorted(alpha_handles, key=lambda t: t[0])]

    if qpath_w is not None and len(qpath_w):
        az, pt = _ap(qpath_w, centre)
        core.append((az, pt))
        h, = ax.plot(*sphere.break_wraps(az, pt), color=R["qpath"], ls=(0, (5, 3)), lw=1.3,
                     zorder=3, label=r"$Q_\mu$ path")
        handles.append(h)

    cross = cross or {}
    cross_style = dict(color=R["cross"], alpha=0.6, ls=":", lw=1.0, marker="o", ms=2.5)
    for mu, E in cross.items():
        az, pt = _ap(E, centre)
        core.append((az, pt))
        ax.plot(az, pt, zorder=3, label=f"μ = {_num(mu)}", **cross_style)
    if cross:
        handles.append(Line2D([], [], label=r"ends at $\tilde\gamma=\alpha^D/\mu$", **cross_style))

    q_points = q_points or {}
    q_style = dict(ls="none", marker="s", ms=6, mfc=R["q"], mec=R["edge"], mew=0.6)
    for mu, q in q_points.items():
        az, pt = _ap(q, centre)
        core.append((az, pt))
        ax.plot(az, pt, zorder=6, **q_style)
    if q_points:
        handles.append(Line2D([], [], label=r"$Q_\mu$ max-margin", **q_style))

    if l1_face is not None and len(l1_face) > 1:
        outline, polygon = _face_outline(l1_face)
        az, pt = _ap(outline, centre)
        # a wide grey band, not the ℓ1 star's orange: an α curve already uses that colour
        h, = ax.plot(az, pt, color=R["reference"], lw=6.0, alpha=0.3, solid_capstyle="round",
                     zorder=2.5, label=r"$\ell_1$ optimal face")
        if polygon:
            ax.fill(az, pt, color=R["reference"], alpha=0.15, lw=0, zorder=1)
        handles.append(h)

    for key, W, kw in (("start", start, dict(marker="^", ms=7, label="start")),
                       ("l2", l2, dict(marker="o", ms=8, mew=0.7, label=r"$\ell_2$")),
                       ("l1", l1, dict(marker="*", ms=13, mew=0.7, label=r"$\ell_1$"))):
        az, pt = _ap(W, centre)
        core.append((az, pt))
        handles.append(ax.plot(az, pt, ls="none", mfc=R[key], mec=R["edge"], zorder=6, **kw)[0])
    if l2D_points is not None and len(l2D_points):
        az, pt = _ap(l2D_points, centre)
        name = f"2/{int(depth)}" if depth is not None else "2/D"
        handles.append(ax.plot(az, pt, ls="none", marker="D", ms=6.5, mfc=R["l2d"],
                               mec=R["edge"], mew=0.7, zorder=5.5,  # under an ℓ1 star
                               label=rf"$\ell_{{{name}}}$ stationary points")[0])

    lims = limits if limits is not None else _limits(core)
    if lims is not None:
        ax.set_xlim(*lims[0])
        ax.set_ylim(*lims[1])
    # "μ = …" beside each square (or the end of a cross line without one), on the side
    # facing the middle of the panel so it stays inside; where squares crowd, the label
    # goes to the other side, or is left out if both sides are taken
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    placed = []  # (x, y) in axes fractions, side
    for mu in dict.fromkeys(list(q_points) + list(cross)):
        where = q_points.get(mu)
        if where is None:
            where = np.asarray(cross[mu], dtype=float)[-1]
        az, pt = (float(v[0]) for v in _ap(where, centre))
        fx, fy = (az - x0) / (x1 - x0), (pt - y0) / (y1 - y0)
        sides = (fx > 0.5, fx <= 0.5)
        # a label is ~0.12 of the axes wide and ~0.04 high
        free = [sd for sd in sides if all(sd != s2 or abs(fx - u) > 0.12 or abs(fy - v) > 0.04
                                          for u, v, s2 in placed)]
        if not free:
            continue
        right = free[0]
        placed.append((fx, fy, right))
        top = pt > y0 + 0.9 * (y1 - y0)
        ax.annotate(f"μ = {_num(mu)}", (az, pt), xytext=(-5 if right else 5, -4 if top else 3),
                    textcoords="offset points", ha="right" if right else "left",
                    va="top" if top else "bottom", fontsize=6.5, color=R["reference"], zorder=7)
    _frame_labels(ax, centre)
    ax.set_title(title or r"directions $w/\|w\|_2$ along gradient flow")
    return handles


@_styled
def sphere_panel(ax=None, *, trajectories, start, l2, l1, qpath_w, cross, q_points,
                 l1_face=None, l2D_points=None, centre=None, title="", depth=None,
                 limits=None, colours=None, legend=True):
    """Trajectories of w(t)/‖w(t)‖₂ in azimuth-pitch coordinates, as in the paper's
    Figs. 3(b)-(d) and 4, drawn into ``ax`` (a new figure if None); returns the figure.

    trajectories  list of (alpha, W), W (n, 3): w(t) along the run (any scale; zero rows
                  are skipped); one colour per α (``colours`` = {α: colour} overrides),
                  legend "α = …", a dot where the run stopped
    start         (3,) mean of y_n x_n, the flow's first direction ("start", black ▲)
    l2, l1        (3,) the ℓ2 (green circle) and ℓ1 (orange star) max-margin points
    qpath_w       (m, 3) the Q_μ path, μ from ∞ to 0 (dashed black)
    cross         {μ: (n_alpha, 3)} end points of runs stopped at γ̃ = α^D/μ, in order of
                  α (thin dotted lines joining them; each line's label is "μ = …")
    q_points      {μ: (3,)} the Q_μ max-margin points (pink squares, marked "μ = …")
    l1_face       (k, 3) vertices of a non-unique ℓ1 optimal face: the arc (k = 2) or
                  spherical polygon of the directions it spans (orange)
    l2D_points    (k, 3) KKT points of the ℓ_{2/D} problem (yellow diamonds); ``depth``
                  puts D in their label
    centre        (3,) plot in the frame where this direction is (0, 0) (see
                  :mod:`flowkit.analysis.sphere`); None: the plain azimuth-pitch frame
    limits        ((az0, az1), (pitch0, pitch1)) of the view; by default it fits the
                  trajectories, Q_μ path, cross lines and the start/ℓ2/ℓ1/Q_μ markers (the
                  ℓ1 face and ℓ_{2/D} points may run outside it)
    legend        False: no legend (fig3/fig4 draw one for all panels)
    """
    ax = _ax_or_new(ax)
    handles = _draw_sphere_panel(
        ax, trajectories=trajectories, start=start, l2=l2, l1=l1, qpath_w=qpath_w,
        cross=cross, q_points=q_points, l1_face=l1_face, l2D_points=l2D_points,
        centre=centre, title=title, depth=depth, limits=limits, colours=colours)
    if legend:
        ax.legend(handles=handles, loc="best")
    return ax.figure


@_styled
def sphere_overview(ax=None, X=None, y=None, centre=None, *, zoom=None, zoom_centre=None,
                    zoom_label="zoomed region", resolution=1.0,
                    title="separating directions on the sphere"):
    """The whole sphere in azimuth-pitch (plain frame, or centred on ``centre``), with
    the region of separating directions {v : min_n y_n x_nᵀ v > 0} shaded grey, the data
    directions y_n x_n, and the outline of a zoomed panel: ``zoom`` = ((az0, az1),
    (pitch0, pitch1)) in degrees, in the frame centred on ``zoom_centre`` (None: plain).
    The region's boundary is interpolated from min_n y_n x_nᵀ v on a ``resolution``-degree
    grid.  Returns the figure."""
    if X is None or y is None:
        raise ValueError("sphere_overview needs the data X (N, 3) and labels y (N,)")
    ax = _ax_or_new(ax, figsize=(5.5, 3.4))
    Xt = sphere._as3(np.asarray(X, dtype=float) * np.asarray(y, dtype=float)[:, None])
    az = np.arange(-180.0, 180.0 + resolution / 2, resolution)
    pt = np.arange(-90.0, 90.0 + resolution / 2, resolution)
    AZ, PT = np.meshgrid(az, pt)
    margin = (sphere.direction(AZ, PT, centre) @ Xt.T).min(axis=-1)
    handles = []
    if (margin > 0).any():
        ax.contourf(AZ, PT, margin, levels=[0.0, float(margin.max()) + 1.0],
                    colors=[R["region"]], alpha=0.22, zorder=1)
        handles.append(Patch(facecolor=R["region"], alpha=0.22, label="separating directions"))
    a, p = _ap(Xt, centre)
    handles.append(ax.plot(a, p, ls="none", marker="P", ms=6, mfc=R["reference"],
                           mec=R["edge"], zorder=5, label=r"data $y_n x_n$")[0])
    if zoom is not None:
        (a0, a1), (p0, p1) = zoom
        n = 200
        edge_a = np.concatenate([np.linspace(a0, a1, n), np.full(n, a1),
                                 np.linspace(a1, a0, n), np.full(n, a0)])
        edge_p = np.concatenate([np.full(n, p0), np.linspace(p0, p1, n),
                                 np.full(n, p1), np.linspace(p1, p0, n)])
        ba, bp = sphere.azimuth_pitch(sphere.direction(edge_a, edge_p, zoom_centre), centre)
        handles.append(ax.plot(*sphere.break_wraps(ba, bp), color=R["zoom"], lw=1.6,
                               zorder=6, label=zoom_label)[0])
        if np.nanmax(ba) - np.nanmin(ba) < 6 and np.nanmax(bp) - np.nanmin(bp) < 6:
            # a box this small is a dot at this scale: ring it
            ax.plot(np.nanmean(ba), np.nanmean(bp), ls="none", marker="o", ms=14, mfc="none",
                    mec=R["zoom"], mew=1.0, zorder=6)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xticks(np.arange(-180, 181, 60))
    ax.set_yticks(np.arange(-90, 91, 30))
    ax.set_aspect("equal")
    _frame_labels(ax, centre)
    ax.set_title(title)
    ax.legend(handles=handles, loc="lower left")
    return ax.figure


def _lettered(title, k):
    return f"({PANEL_LETTERS[k]}) {title}".rstrip()


def _sphere_figure(fig, axes, panels, letters_from):
    """Draw sphere panels sharing α colours, and one legend for all of them below."""
    colours = _alpha_colours(a for p in panels for a, _ in p["trajectories"])
    by_label = {}
    for k, (ax, p) in enumerate(zip(axes, panels)):
        kw = dict(p, colours=p.get("colours", colours))
        kw["title"] = _lettered(kw.get("title") or "directions along gradient flow",
                                letters_from + k)
        kw.pop("legend", None)
        for h in _draw_sphere_panel(ax, **kw):
            by_label.setdefault(h.get_label(), h)
    alphas = [f"α = {_num(a)}" for a in colours]          # colours is sorted by α
    order = ([lab for lab in dict.fromkeys(alphas) if lab in by_label]
             + [lab for lab in by_label if lab not in alphas])
    fig.legend(handles=[by_label[lab] for lab in order], loc="outside lower center",
               ncols=min(len(order), 7))


@_styled
def fig3(panels, *, title="Gradient-flow trajectories, depth D = 2 (paper Fig. 3)"):
    """Figure 3: four panels.  ``panels[0]`` = dict(X, y, centre=None, title="") for the
    sphere overview (a), whose zoom box is panel (b)'s view unless it gives ``zoom``
    (and ``zoom_centre``); ``panels[1:4]`` = :func:`sphere_panel` keyword dicts for
    (b)-(d).  One legend below for all panels; a value of α has one colour throughout."""
    if len(panels) != 4:
        raise ValueError(f"fig3 needs 4 panels (overview, b, c, d); got {len(panels)}")
    fig = Figure(figsize=(10.5, 9.0))
    axes = fig.subplots(2, 2).ravel()
    _sphere_figure(fig, axes[1:], panels[1:], 1)
    ov = dict(panels[0])
    ov.setdefault("zoom", (tuple(axes[1].get_xlim()), tuple(axes[1].get_ylim())))
    ov.setdefault("zoom_centre", panels[1].get("centre"))
    ov.setdefault("zoom_label", "region of (b)")
    ov["title"] = _lettered(ov.get("title") or "separating directions on the sphere", 0)
    sphere_overview(axes[0], **ov)
    fig.suptitle(title)
    return fig


@_styled
def fig4(panels, *, title="Gradient-flow trajectories, depth D = 3 (paper Fig. 4)"):
    """Figure 4: two :func:`sphere_panel` keyword dicts, (a) and (b) (give ``depth=3``
    for the ℓ_{2/3} label).  One legend below; a value of α has one colour throughout."""
    if len(panels) != 2:
        raise ValueError(f"fig4 needs 2 panels; got {len(panels)}")
    fig = Figure(figsize=(10.5, 5.0))
    axes = fig.subplots(1, 2)
    _sphere_figure(fig, axes, panels, 0)
    fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- Fig. 5

@_styled
def fig5a(curves, *, levels=(0.05, 0.01),
          title=r"Excess $\ell_1$ norm vs training accuracy (paper Fig. 5a)"):
    """Excess ℓ1 norm ‖ŵ‖₁/‖w_ℓ1‖₁ - 1 against γ̃, log-log.  ``curves``: list of
    dict(depth, alpha_D, gamma, excess); colour by depth, line style by α^D; dotted
    horizontal lines at ``levels`` (5% and 1%).  Non-positive values are not drawn."""
    fig = Figure(figsize=(5.6, 4.2))
    ax = fig.add_subplot()
    dcol = style.depth_colours([c["depth"] for c in curves])
    alphas = sorted(set(float(c["alpha_D"]) for c in curves))
    dash = {a: LINESTYLES[i % len(LINESTYLES)] for i, a in enumerate(alphas)}
    for c in curves:
        g, e = _positive(c["gamma"], c["excess"])
        ax.plot(g, e, color=dcol[int(c["depth"])], ls=dash[float(c["alpha_D"])], lw=1.6,
                label=f"D = {int(c['depth'])}, α^D = {_num(c['alpha_D'])}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for lev in levels:
        ax.axhline(lev, color=R["reference"], ls=":", lw=1.0, zorder=1)
        ax.annotate(f"{100 * lev:g}%", (1.0, lev), xycoords=("axes fraction", "data"),
                    xytext=(-3, 2), textcoords="offset points", ha="right", va="bottom",
                    fontsize=7, color=R["reference"])
    handles = [Line2D([], [], color=dcol[D], lw=1.6, label=f"D = {D}") for D in dcol]
    handles += [Line2D([], [], color=R["reference"], ls=dash[a], lw=1.4,
                       label=rf"$\alpha^D$ = {_num(a)}") for a in alphas]
    ax.legend(handles=handles, loc="best")
    ax.set_xlabel(r"training accuracy $\tilde\gamma = -\log L$")
    ax.set_ylabel(r"excess $\ell_1$ norm  $\|\hat w\|_1 / \|w_{\ell_1}\|_1 - 1$")
    ax.set_title(title)
    return fig


@_styled
def fig5b(points, fits, *, theory=None, level=0.05,
          title=r"Accuracy needed vs initialisation (paper Fig. 5b)"):
    """γ̃ at which the excess ℓ1 norm reaches ``level`` against α^D, log-log, one marker
    per depth, with the fitted lines γ̃ = e^b (α^D)^a.  ``points``: {depth: (alpha_D,
    gamma)}; ``fits``: {depth: dict(slope, slope_ci, intercept, intercept_ci)} (a CI is a
    half-width or a (low, high) pair, or None; a depth may be missing from ``fits``);
    ``theory``: {depth: μ_level}, drawn dotted as Theorem 6's asymptote γ̃ = α^D/μ_level."""
    fig = Figure(figsize=(6.8, 5.0))
    ax = fig.add_subplot()
    dcol = style.depth_colours(points)
    for i, D in enumerate(sorted(points, key=int)):
        aD, g = _positive(*points[D])
        col = dcol[int(D)]
        ax.plot(aD, g, ls="none", marker=MARKERS[i % len(MARKERS)], ms=6, mfc=col,
                mec=R["edge"], mew=0.6, label=f"D = {int(D)}", zorder=4)
        fit = (fits or {}).get(D)
        if fit is None or not np.any(np.isfinite(aD)):
            continue
        a, b = float(fit["slope"]), float(fit["intercept"])
        lo, hi = np.nanmin(aD), np.nanmax(aD)
        xs = np.geomspace(lo / 1.5, hi * 1.5, 50)
        ax.plot(xs, np.exp(b) * xs ** a, color=col, lw=1.3, zorder=3,
                label=f"fit D = {int(D)}: a = {_estimate(a, fit.get('slope_ci'))}, "
                      f"b = {_estimate(b, fit.get('intercept_ci'))}")
    for D, mu in (theory or {}).items():
        if D in points:
            aD = _positive(*points[D])[0]
            xs = np.geomspace(np.nanmin(aD) / 1.5, np.nanmax(aD) * 1.5, 50)
            ax.plot(xs, xs / mu, color=dcol[int(D)], ls=":", lw=1.6, zorder=2,
                    label=rf"D = {int(D)}: $\alpha^D/\mu_{{{100 * level:g}\%}}$, $\mu$ = {mu:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"initialisation scale $\alpha^D$")
    ax.set_ylabel(rf"accuracy $\tilde\gamma$ for {100 * level:g}% excess $\ell_1$ norm")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small", title=r"$\log\tilde\gamma = a\,\log\alpha^D + b$")
    return fig


# --------------------------------------------------------------------------- theorems

@_styled
def theorem_panel(target=None, data=None, *, title=r"Distance of $\hat w$ to the predicted limit",
                  xlabel=r"initialisation scale $\alpha$",
                  ylabel=r"distance $\|\hat w - w_\star\|_2$"):
    """Distances of ŵ to the ℓ2 / Q_μ / ℓ1 solutions against α, log-log, for the
    sub-linear, linear and super-linear stopping rules (Theorems 4, 6, 7), one curve per
    entry of ``data`` = {name: dict(alpha, distance, rate[, intercept])}.  ``rate`` is
    the fitted log-log slope (None: not fitted); its line, through the points (least
    squares in log-log unless ``intercept`` is given), is dashed, and the legend reads
    "name: slope …".  ``target``: an Axes, a Figure (its first axes, or a new one) or
    None (a new figure).  Returns the figure."""
    if data is None:
        raise ValueError("theorem_panel needs data = {name: dict(alpha, distance, rate)}")
    ax = _ax_or_new(target, figsize=(5.6, 4.2))
    for i, (name, d) in enumerate(data.items()):
        col = style.series_colour(i)
        a, dist = _positive(d["alpha"], d["distance"])
        rate = d.get("rate")
        label = name if rate is None else f"{name}: slope {_estimate(float(rate), d.get('rate_ci'))}"
        ax.plot(a, dist, color=col, marker=MARKERS[i % len(MARKERS)], ms=5, mec=R["edge"],
                mew=0.5, lw=1.2, label=label, zorder=3)
        ok = np.isfinite(a) & np.isfinite(dist)
        if rate is not None and ok.any():
            b = d.get("intercept")
            if b is None:
                b = float(np.mean(np.log(dist[ok]) - rate * np.log(a[ok])))
            xs = np.geomspace(a[ok].min(), a[ok].max(), 50)
            ax.plot(xs, np.exp(b) * xs ** rate, color=col, ls="--", lw=1.0, zorder=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="best")
    return ax.figure


@_styled
def depth_law(data, *, on_data=None, dataset="data",
              title=r"Accuracy for a $\delta$-approximation of $\ell_1$ vs depth"):
    """log(1/μ) needed for a δ-approximation of the ℓ1 limit: against 1/δ for D = 2
    (left; μ = exp(-c/δ)) and against log(1/δ) for D > 2 (middle; 1/μ = poly(1/δ)).
    ``data`` = {depth: dict(delta, mu, fit=dict(slope, intercept[, slope_ci,
    intercept_ci]) or None)}, the fit being y = slope·x + intercept in the panel's own
    coordinates.  ``on_data`` (same shape, fits ignored): the same on one dataset, all
    depths against log(1/δ) in a third panel (D = 2 is polynomial there)."""
    fig = Figure(figsize=(15.0 if on_data else 10.0, 4.2))
    axes = fig.subplots(1, 3 if on_data else 2)
    left, right = axes[0], axes[1]
    dcol = style.depth_colours({**data, **(on_data or {})})
    for i, D in enumerate(sorted(data, key=int)):
        d = data[D]
        delta = np.asarray(d["delta"], dtype=float)
        mu = np.asarray(d["mu"], dtype=float)
        ok = (delta > 0) & (mu > 0) & np.isfinite(delta) & np.isfinite(mu)
        yv = np.log(1.0 / mu[ok])
        ax, xv = (left, 1.0 / delta[ok]) if int(D) == 2 else (right, np.log(1.0 / delta[ok]))
        col = dcol[int(D)]
        ax.plot(xv, yv, ls="none", marker=MARKERS[i % len(MARKERS)],
                ms=6 if len(xv) <= 30 else 4, mfc=col,
                mec=R["edge"], mew=0.6, label=f"D = {int(D)}", zorder=4)
        fit = d.get("fit")
        if fit and len(xv):
            xs = np.linspace(xv.min(), xv.max(), 50)
            s, b = float(fit["slope"]), float(fit["intercept"])
            ax.plot(xs, s * xs + b, color=col, lw=1.3, zorder=3,
                    label=f"fit D = {int(D)}: slope {_estimate(s, fit.get('slope_ci'))}, "
                          f"intercept {_estimate(b, fit.get('intercept_ci'))}")
    left.set_xlabel(r"$1/\delta$")
    left.set_title(r"worst case, D = 2: a line if $\mu = e^{-c/\delta}$")
    right.set_xlabel(r"$\log(1/\delta)$")
    right.set_title(r"worst case, D > 2: a line if $1/\mu = \mathrm{poly}(1/\delta)$")
    if on_data:
        ax = axes[2]
        for i, D in enumerate(sorted(on_data, key=int)):
            delta = np.asarray(on_data[D]["delta"], dtype=float)
            mu = np.asarray(on_data[D]["mu"], dtype=float)
            ok = (delta > 0) & (mu > 0) & np.isfinite(delta) & np.isfinite(mu)
            ax.plot(np.log(1.0 / delta[ok]), np.log(1.0 / mu[ok]), ls="-", lw=1.0,
                    color=dcol[int(D)], marker=MARKERS[i % len(MARKERS)], ms=5,
                    mfc=dcol[int(D)], mec=R["edge"], mew=0.6, label=f"D = {int(D)}")
        ax.set_xlabel(r"$\log(1/\delta)$")
        ax.set_title(f"one dataset ({dataset}): polynomial at every D")
    for ax in axes:
        ax.set_ylabel(r"$\log(1/\mu)$")
        if ax.lines:
            ax.legend(loc="best")
        else:
            ax.text(0.5, 0.5, "no runs at these depths", transform=ax.transAxes,
                    ha="center", va="center", color=R["reference"])
            ax.legend(handles=[Line2D([], [], ls="none", label="(no data)")], loc="best")
    fig.suptitle(title)
    return fig
