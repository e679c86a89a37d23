"""Shared matplotlib setup: one style for every report figure, small PNGs."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; no display needed (CI, GPU boxes)
import matplotlib.pyplot as plt
from matplotlib.colors import LogNorm
from matplotlib.ticker import FixedLocator, FormatStrFormatter, LogFormatterSciNotation, NullFormatter

STYLE = {
    "figure.figsize": (8.0, 3.6),
    "figure.dpi": 90,  # ~720 px wide: readable at README width, small files
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,  # at least 9 pt as shown: the PNG is shown at its own size
    "legend.fontsize": 9,
    "axes.titlesize": 10,
    "figure.titlesize": 11,
    "legend.frameon": False,
}


def new_figure(ncols: int = 1, nrows: int = 1, height: float | None = None):
    with plt.rc_context(STYLE):
        size = (STYLE["figure.figsize"][0], height or STYLE["figure.figsize"][1] * nrows)
        fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, layout="constrained")
    return fig, axes


class PlainLogFormatter(LogFormatterSciNotation):
    """Log-axis labels as plain numbers (60,000; 0.5), on the ticks matplotlib would label."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        if not super().__call__(x, pos):
            return ""
        return f"{x:,.0f}" if x >= 1 else f"{x:g}"


def plain_log_labels(fig) -> None:
    """No 10^k or 6×10^3 tick labels on any log axis of ``fig``."""
    for ax in fig.axes:
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale == "log" and isinstance(axis.get_major_formatter(), LogFormatterSciNotation):
                axis.set_major_formatter(PlainLogFormatter())
                axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def outside_legend(fig, ax) -> None:
    """The axes' legend below the plot, in columns: a legend inside covered the lines it names."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(handles)))


MACHINE_SEP = " · "  # series labels end in " · <machine>" where a plot mixes machines


def save(fig, folder: Path, name: str, question: str | None = None) -> str:
    """Write ``name``.png into the report folder, close the figure, return the file name.

    ``question`` becomes the figure's title. Where every series is on one machine, the
    machine is named once, in the title, instead of in every legend entry and panel title.
    """
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    texts = [t for legend in legends for t in legend.get_texts()]
    machines = {t.get_text().rsplit(MACHINE_SEP, 1)[1] if MACHINE_SEP in t.get_text() else None for t in texts}
    machines |= {ax.get_title().rsplit(MACHINE_SEP, 1)[1] for ax in fig.axes if MACHINE_SEP in ax.get_title()}
    if len(machines) == 1 and None not in machines:
        machine = machines.pop()
        for t in texts:
            t.set_text(t.get_text().removesuffix(MACHINE_SEP + machine))
        for ax in fig.axes:
            ax.set_title(ax.get_title().removesuffix(MACHINE_SEP + machine))
        question = f"{question} ({machine})" if question else machine
    if question:
        fig.suptitle(question)
    plain_log_labels(fig)
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


def ratio_heatmap(ax, grid, norm: LogNorm, title: str, cell_text, fontsize: int = 9):
    """A seq_len x batch_size grid of time ratios; ``cell_text(i, j, value)`` labels each cell."""
    # Cells not measured are transparent over a hatched background: never mistaken for 1.0x.
    ax.set_facecolor("0.95")
    ax.patch.set_hatch("///")
    ax.patch.set_edgecolor("0.75")
    im = ax.imshow(grid.values, origin="lower", cmap="RdBu_r", norm=norm, aspect="auto")
    for (i, j), v in np.ndenumerate(grid.values):
        if not np.isnan(v):
            r, g, b, _ = im.cmap(norm(v))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # white text on dark red or blue cells
            ax.text(
                j, i, cell_text(i, j, v), ha="center", va="center", fontsize=fontsize, color="white" if dark else "k"
            )
    ax.set_xticks(range(grid.shape[1]), grid.columns)
    ax.set_yticks(range(grid.shape[0]), grid.index)
    ax.set_xlabel("batch size")
    ax.set_ylabel("sequence length")
    ax.set_title(title)
    ax.grid(False)
    return im
