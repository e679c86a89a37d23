"""Shared matplotlib setup: one style for every report figure, small PNGs."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; no display needed (CI, GPU boxes)
import matplotlib.pyplot as plt
from matplotlib.colors import LogNorm
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

STYLE = {
    "figure.figsize": (8.0, 3.6),
    "figure.dpi": 90,  # ~720 px wide: readable at README width, small files
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def new_figure(ncols: int = 1, nrows: int = 1, height: float | None = None):
    with plt.rc_context(STYLE):
        size = (STYLE["figure.figsize"][0], height or STYLE["figure.figsize"][1] * nrows)
        fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, layout="constrained")
    return fig, axes


def save(fig, folder: Path, name: str) -> str:
    """Write ``name``.png into the report folder, close the figure, return the file name."""
    file = f"{name}.png"
    with plt.rc_context(STYLE):
        fig.savefig(folder / file)
    plt.close(fig)
    return file


RATIO_TICKS = [0.1, 0.2, 0.33, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0]


def ratio_norm(ratios) -> LogNorm:
    """A log colour scale for time ratios with 1× in the middle (white in RdBu_r).

    Symmetric in log space, so a cell shows blue only when its ratio is below 1.
    """
    lo, hi = float(min(ratios)), float(max(ratios))
    span = max(hi, 1 / lo, 1.1)
    return LogNorm(vmin=1 / span, vmax=span)


def ratio_colorbar(fig, axes, mappable, label: str) -> None:
    """A colour bar with plain ``0.5``-style ticks rather than powers of ten."""
    bar = fig.colorbar(mappable, ax=axes, label=label)
    bar.ax.yaxis.set_major_locator(FixedLocator(RATIO_TICKS))
    bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
    bar.ax.yaxis.set_minor_formatter(NullFormatter())


def ratio_heatmap(ax, grid, norm: LogNorm, title: str, cell_text, fontsize: int = 7):
    """A seq_len x batch_size grid of time ratios; ``cell_text(i, j, value)`` labels each cell."""
    im = ax.imshow(grid.values, origin="lower", cmap="RdBu_r", norm=norm, aspect="auto")
    for (i, j), v in np.ndenumerate(grid.values):
        if not np.isnan(v):
            ax.text(j, i, cell_text(i, j, v), ha="center", va="center", fontsize=fontsize)
    ax.set_xticks(range(grid.shape[1]), grid.columns)
    ax.set_yticks(range(grid.shape[0]), grid.index)
    ax.set_xlabel("batch size")
    ax.set_ylabel("sequence length")
    ax.set_title(title, fontsize=8)
    ax.grid(False)
    return im
