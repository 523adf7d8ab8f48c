"""The release's statistics figure (PNG): what a paper would print about the dataset.

Six panels: records per modality, per source, per organ (top), per ROI label (top), caption
length histogram, ROI area-fraction histogram (log scale). Drawn with matplotlib's Agg canvas
directly (no pyplot, no global backend switch), so it is safe in any process.
"""

from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .statistics import ReleaseStatistics

TOP_N = 12


def _barh(ax, items: list[tuple[str, int]], title: str, colour: str) -> None:
    items = items[:TOP_N]
    if not items:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
        return
    labels = [name if len(name) <= 28 else name[:26] + "…" for name, _ in items][::-1]
    values = [n for _, n in items][::-1]
    bars = ax.barh(range(len(values)), values, color=colour)
    ax.set_yticks(range(len(values)), labels, fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelsize=7)
    for bar, v in zip(bars, values, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {v}", va="center", fontsize=6)
    ax.margins(x=0.15)


def _hist(ax, values: list[float], title: str, xlabel: str, colour: str, log: bool = False, ylabel: str = "records") -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    values = [v for v in values if v is not None and (v > 0 or not log)]
    if not values:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
        return
    if log:
        lo, hi = math.log10(min(values)), math.log10(max(values))
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        bins = [10 ** (lo + (hi - lo) * i / 24) for i in range(25)]
        ax.set_xscale("log")
    else:
        bins = min(30, max(5, len(set(values))))
    ax.hist(values, bins=bins, color=colour, edgecolor="white", linewidth=0.4)


def statistics_figure(stats: ReleaseStatistics, title: str) -> bytes:
    """PNG bytes of the six-panel statistics figure."""
    fig = Figure(figsize=(13, 8.5), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    _barh(axes[0][0], stats.by_modality, "Records per modality", "#4C72B0")
    _barh(axes[0][1], stats.by_source, "Records per source", "#55A868")
    _barh(axes[0][2], stats.by_organ, f"Records per organ (top {TOP_N})", "#C44E52")
    _barh(axes[1][0], stats.by_label, f"Records per ROI label (top {TOP_N})", "#8172B2")
    _hist(axes[1][1], [float(w) for w in stats.caption_words], "Caption length", "words", "#CCB974")
    _hist(axes[1][2], stats.roi_area_frac, "ROI area", "fraction of the image (log)", "#64B5CD", log=True, ylabel="ROIs")
    fig.suptitle(f"{title}: {stats.records} records, {stats.images} images, {stats.rois} ROIs", fontsize=12)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
