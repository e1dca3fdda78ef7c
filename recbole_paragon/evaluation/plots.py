"""Plots of the report: Pareto fronts of two metrics, ternary maps of each metric over a 3-objective simplex, and
one panel per pair of metrics for three objectives or more."""
from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np

from recbole_paragon.evaluation.measures import _as_array

#: The methods a ternary map compares side by side, when present.
TERNARY_METHODS = ("retune", "diffusion")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))  # no pyplot: independent of the global backend, nothing left open
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str) -> str:
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120, format="png")
    return path


def pareto_plot(
    methods: Mapping[str, Sequence[Tuple[float, float]]], x_label: str, y_label: str, path: str
) -> str:
    """One line with markers per method through its ``(x, y)`` points (in the given order, e.g. the preference
    sweep; non-finite points are dropped), saved as PNG at ``path``. Returns ``path``."""
    fig = _figure(6, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    for name, points in methods.items():
        array = _as_array(list(points), name="points").reshape(-1, 2)
        array = array[np.isfinite(array).all(axis=1)]
        if len(array):
            ax.plot(array[:, 0], array[:, 1], marker="o", markersize=4, linewidth=1.2, label=str(name))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _save(fig, path)


def simplex_xy(preferences: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """2-D coordinates of 3-objective preferences on an equilateral triangle (vertex i = objective i)."""
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    xy = preferences @ corners
    return xy[:, 0], xy[:, 1]


def ternary_plots(report: Mapping[str, Any], directory: str) -> Dict[str, str]:
    """One PNG per objective metric, ``ternary-<metric>.png``: the simplex of test preferences coloured by the
    metric, re-tuned and generated adapters side by side (one colour scale). Returns ``{"ternary <metric>": path}``."""
    objectives = list(report["objectives"])
    methods = [m for m in TERNARY_METHODS if report.get("methods", {}).get(m)]
    paths: Dict[str, str] = {}
    for metric in report["hypervolume_reference"]["metrics"]:
        data = {m: [(e["preference"], e["metrics"].get(metric)) for e in report["methods"][m]
                    if e.get("metrics", {}).get(metric) is not None] for m in methods}
        values = [v for points in data.values() for _, v in points]
        if not values:
            continue
        fig = _figure(4.2 * len(methods), 3.8)
        for column, method in enumerate(methods, start=1):
            ax = fig.add_subplot(1, len(methods), column)
            weights = _as_array([p for p, _ in data[method]], 2, "preferences")
            x, y = simplex_xy(weights)
            points = ax.scatter(x, y, c=[v for _, v in data[method]], s=90, cmap="viridis",
                                vmin=min(values), vmax=max(values))
            ax.plot([0, 1, 0.5, 0], [0, 0, np.sqrt(3) / 2, 0], color="grey", linewidth=0.8)
            for (cx, cy), name in zip([(0, 0), (1, 0), (0.5, np.sqrt(3) / 2)], objectives):
                ax.annotate(name, (cx, cy), ha="center", va="top" if cy == 0 else "bottom", fontsize=8)
            ax.set_title(f"{method}: {metric}", fontsize=9)
            ax.set_axis_off()
            fig.colorbar(points, ax=ax, shrink=0.7)
        safe = metric.replace("@", "_at_")
        paths[f"ternary {metric}"] = _save(fig, os.path.join(directory, f"ternary-{safe}.png"))
    return paths


def pairs_plot(report: Mapping[str, Any], keys: Sequence[str], path: str,
               methods: Sequence[str] = ("retune", "diffusion")) -> str:
    """Every pair of the metrics ``keys`` in its own panel (K objectives: K(K−1)/2 panels), each method's test points
    as a scatter: how K > 2 objectives trade off, pair by pair. Returns ``path``."""
    pairs = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1:]]
    shown = [m for m in methods if report.get("methods", {}).get(m)] or list(report.get("methods", {}))[:2]
    columns = min(3, len(pairs))
    rows = -(-len(pairs) // columns)
    fig = _figure(3.6 * columns, 3.2 * rows)
    for index, (x_key, y_key) in enumerate(pairs, start=1):
        ax = fig.add_subplot(rows, columns, index)
        for method in shown:
            points = [(e["metrics"].get(x_key), e["metrics"].get(y_key)) for e in report["methods"][method]]
            array = np.array([p for p in points if None not in p], dtype=float).reshape(-1, 2)
            ax.scatter(array[:, 0], array[:, 1], s=14, alpha=0.7, label=method)
        ax.set_xlabel(x_key, fontsize=8)
        ax.set_ylabel(y_key, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        if index == 1:
            ax.legend(fontsize=7)
    return _save(fig, path)
