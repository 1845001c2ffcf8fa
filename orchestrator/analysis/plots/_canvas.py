"""The Agg canvas every figure is drawn on, shared colours, and writing figures as PNG."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.axes import Axes
from matplotlib.figure import Figure

_DPI = 120


def new_figure(ncols: int = 1) -> tuple[Figure, Any]:
    """A Figure on its own Agg canvas (no pyplot, no display) and its axes."""
    fig = Figure(figsize=(6.4 * ncols, 4.8))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols)


def colors(count: int) -> list:
    return list(colormaps["viridis"](np.linspace(0.0, 0.9, max(count, 1))))


def log_scale_if_wide(ax: Axes, x: np.ndarray, y: np.ndarray) -> None:
    """Use a log axis for strictly positive values spanning more than two decades."""
    for values, set_scale in ((x, ax.set_xscale), (y, ax.set_yscale)):
        values = np.asarray(values, dtype=float)
        if len(values) and values.min() > 0 and values.max() / values.min() > 100:
            set_scale("log")


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as a PNG at `path` (parent folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(fig))
    return path


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()
