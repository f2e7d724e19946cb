"""One paper-like style for every figure of the reproduction.

* Colours come only from the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal
  Design"), distinguishable under the common colour-vision deficiencies.  Grey (the
  separating region of the sphere, grid lines) is the palette's black at low alpha.
* ``RC``: rcParams (sizes in points for a ~7 inch wide page); :func:`context` applies
  them temporarily, :func:`apply` globally.  ``flowkit.analysis.figures`` builds every figure
  inside :func:`context`.
* :func:`save` writes a figure as PNG (200 dpi) and PDF next to each other.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot, so no GUI backend
and no global figure registry is involved: PNGs are rendered by Agg, PDFs by the pdf
backend, whatever backend an interactive session has selected.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
from matplotlib import colors as mcolors
from cycler import cycler

__all__ = ["OKABE_ITO", "PALETTE", "SERIES", "ROLE", "RC", "series_colour", "depth_colours",
           "is_palette_colour", "context", "apply", "save"]

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
PALETTE = tuple(OKABE_ITO.values())

# Colours for a series of curves (values of α, depths, named curves), in order of use.
# Black is kept for reference objects (Q_μ path, start point); yellow, weak as a thin
# line on white, comes last.
SERIES = tuple(OKABE_ITO[k] for k in ("blue", "vermillion", "sky_blue", "bluish_green",
                                      "reddish_purple", "orange", "yellow"))

# Fixed colours of the reference objects, as in the paper's Figs. 3-4 where it has them
# (green ℓ2 circle, orange ℓ1 star, pink Q_μ squares, black dashed Q_μ path).
ROLE = {
    "l2": OKABE_ITO["bluish_green"],
    "l1": OKABE_ITO["orange"],
    "q": OKABE_ITO["reddish_purple"],
    "cross": OKABE_ITO["black"],        # drawn with alpha
    "l2d": OKABE_ITO["yellow"],
    "start": OKABE_ITO["black"],
    "qpath": OKABE_ITO["black"],
    "region": OKABE_ITO["black"],   # drawn with alpha: grey
    "zoom": OKABE_ITO["vermillion"],
    "reference": OKABE_ITO["black"],
    "edge": OKABE_ITO["black"],
}

RC = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 7,
    "legend.framealpha": 0.9,
    "legend.handlelength": 2.2,
    "figure.titlesize": 10.5,
    "mathtext.fontset": "dejavusans",
    "lines.linewidth": 1.5,
    "lines.markersize": 5,
    "axes.linewidth": 0.8,
    "axes.prop_cycle": cycler(color=SERIES),
    "axes.grid": True,
    "grid.color": OKABE_ITO["black"],
    "grid.alpha": 0.12,
    "grid.linewidth": 0.5,
    "text.color": OKABE_ITO["black"],
    "axes.labelcolor": OKABE_ITO["black"],
    "axes.edgecolor": OKABE_ITO["black"],
    "xtick.color": OKABE_ITO["black"],
    "ytick.color": OKABE_ITO["black"],
    "figure.constrained_layout.use": True,
    "savefig.dpi": 200,
    "savefig.bbox": None,   # constrained layout already fits everything: exact page size
    "pdf.fonttype": 42,   # TrueType in the PDF: editable text, no Type 3 fonts
    "ps.fonttype": 42,
}

_PALETTE_RGB = {tuple(round(v, 6) for v in mcolors.to_rgb(c)) for c in PALETTE}


def series_colour(i):
    """Colour of the i-th curve of a series (cycles through ``SERIES``)."""
    return SERIES[i % len(SERIES)]


def depth_colours(depths):
    """``{depth: colour}`` for the sorted distinct depths, the same in every figure that
    gets the same set of depths."""
    return {D: series_colour(i) for i, D in enumerate(sorted(set(int(D) for D in depths)))}


def is_palette_colour(colour):
    """Whether ``colour`` (any matplotlib colour spec, alpha ignored) is an Okabe-Ito
    colour.  Fully transparent colours (e.g. "none") count as no colour, so True."""
    rgba = mcolors.to_rgba(colour)
    if rgba[3] == 0:
        return True
    return tuple(round(v, 6) for v in rgba[:3]) in _PALETTE_RGB


@contextmanager
def context():
    """The style's rcParams for the duration of a ``with`` block."""
    with mpl.rc_context(RC):
        yield


def apply():
    """Set the style's rcParams globally (for scripts that use pyplot directly)."""
    mpl.rcParams.update(RC)


def save(fig, path_stem):
    """Write ``fig`` to ``<path_stem>.png`` (200 dpi, so figsize x 200 pixels) and
    ``<path_stem>.pdf``, creating the directory.  A trailing .png/.pdf on ``path_stem``
    is dropped.  Neither file carries
    a date, so the same inputs give the same bytes.  Returns (png, pdf) paths."""
    stem = Path(path_stem)
    if stem.suffix.lower() in (".png", ".pdf"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    png = stem.parent / (stem.name + ".png")
    pdf = stem.parent / (stem.name + ".pdf")
    with context():
        fig.savefig(png, format="png", dpi=200)
        fig.savefig(pdf, format="pdf", metadata={"CreationDate": None, "ModDate": None})
    return png, pdf
