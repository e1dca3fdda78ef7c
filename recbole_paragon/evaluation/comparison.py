"""RecBole's own models beside Paragon's fronts in the report: their mean ± sd over seeds, a table, the plots.

The compare stage (:mod:`recbole_paragon.compare`) hands over its runs, one per model and seed::

    {"runs": [{"model", "seed", "metrics": {key: value}, "unavailable": {MetricClass: reason}, "error", "seconds",
               "config_files"}, ...], "models": [...], "seeds": [...], "settings": {...}, "protocol": {...}}

:func:`add_comparison` summarises them into ``report["compare"]`` against the report's objective metrics; the
markdown section, the printed table and ``compare.png`` (the models as points with their seeds' sd over the
re-tuned and generated fronts, one panel per pair of objective metrics) are drawn from that summary alone.
"""
from __future__ import annotations

import itertools
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from recbole_paragon.evaluation.plots import _figure, _save

#: Paragon's methods drawn as fronts under the models, when the report has them.
FRONT_METHODS = ("retune", "diffusion", "hypernet")
PLOT_FILE = "compare.png"
#: Metrics shown besides the objectives' when measured (the accuracy and the worst group's accuracy at 10).
EXTRA_COLUMNS = ("ndcg@10", "recall@10", "worstgroupndcg@10")


def _metric_class(key: str) -> str:
    return key.split("@", 1)[0].lower()


def _mean_sd(values: Sequence[float]) -> Dict[str, Optional[float]]:
    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if not len(array):
        return {"mean": None, "sd": None}
    return {"mean": float(array.mean()), "sd": float(array.std(ddof=1)) if len(array) > 1 else None}


def summarise_model(runs: Sequence[Mapping[str, Any]], objective_keys: Sequence[str]) -> Dict[str, Any]:
    """One model's runs (one per seed) as mean and sd per metric key, its errors per seed, and the objective
    metrics it could not be measured on (with the reason)."""
    done = [r for r in runs if not r.get("error")]
    keys: List[str] = []
    for run in done:
        keys += [k for k in run.get("metrics", {}) if k not in keys]
    stats = {k: _mean_sd([r["metrics"].get(k) for r in done]) for k in keys}
    reasons = {cls.lower(): why for r in runs for cls, why in (r.get("unavailable") or {}).items()}
    unavailable = {k: reasons.get(_metric_class(k), "not measured") for k in objective_keys if done and k not in keys}
    return {"seeds": [r["seed"] for r in done], "mean": {k: v["mean"] for k, v in stats.items()},
            "sd": {k: v["sd"] for k, v in stats.items()}, "unavailable": unavailable,
            "errors": {str(r["seed"]): r["error"] for r in runs if r.get("error")},
            "seconds": _mean_sd([r.get("seconds") for r in done])["mean"],
            "config_files": next((r.get("config_files") for r in runs if r.get("config_files")), [])}


def add_comparison(report: Dict[str, Any], comparison: Mapping[str, Any]) -> Dict[str, Any]:
    """``report["compare"]``: every model of ``comparison`` summarised (:func:`summarise_model`) on the report's
    objective metrics. Returns the report."""
    objective_keys = list((report.get("hypervolume_reference") or {}).get("metrics") or [])
    runs = list(comparison.get("runs", []))
    models = list(comparison.get("models") or dict.fromkeys(r["model"] for r in runs))
    report["compare"] = {
        **{k: v for k, v in comparison.items() if k != "runs"},
        "metrics": objective_keys,
        "models": {name: summarise_model([r for r in runs if r["model"] == name], objective_keys) for name in models},
        "runs": runs,
    }
    return report


# -- tables -----------------------------------------------------------------------------------------------------------
def _cell(summary: Mapping[str, Any], key: str) -> str:
    if key in summary.get("unavailable", {}):
        return "n/a"
    mean, sd = summary["mean"].get(key), summary["sd"].get(key)
    if mean is None:
        return "—"
    return f"{mean:.4f}" + (f" ± {sd:.4f}" if sd is not None else "")


def _note(summary: Mapping[str, Any]) -> str:
    notes = [f"{key}: not measurable ({why})" for key, why in summary.get("unavailable", {}).items()]
    notes += [f"seed {seed} failed: {error}" for seed, error in summary.get("errors", {}).items()]
    return "; ".join(notes).replace("|", "/").replace("\n", " ")


def comparison_rows(report: Mapping[str, Any]) -> tuple:
    """Header and rows: one row per RecBole model, then the range (min – max over the test preferences) of each
    Paragon front."""
    compare = report["compare"]
    keys = list(compare.get("metrics") or [])
    extra = [k for k in EXTRA_COLUMNS if k not in keys and any(k in s["mean"] for s in compare["models"].values())]
    header = ["model", "seeds"] + keys + extra + ["train s / seed", "note"]
    rows = []
    for name, summary in compare["models"].items():
        seconds = summary.get("seconds")
        rows.append([name, str(len(summary["seeds"]))] + [_cell(summary, k) for k in keys + extra]
                    + ["—" if seconds is None else f"{seconds:.0f}", _note(summary)])
    for method in FRONT_METHODS + ("backbone",):
        entries = (report.get("methods") or {}).get(method) or []
        if not entries:
            continue
        cells = []
        for key in keys + extra:
            values = [e["metrics"][key] for e in entries if e.get("metrics", {}).get(key) is not None]
            cells.append("—" if not values else f"{min(values):.4f}" if min(values) == max(values) else
                         f"{min(values):.4f} – {max(values):.4f}")
        rows.append([f"Paragon {method}", f"{len(entries)} pref."] + cells + ["", ""])
    return header, rows


def comparison_table(report: Mapping[str, Any]) -> str:
    """The table the command line prints after the summary."""
    header, rows = comparison_rows(report)
    header, rows = header[:-1], [row[:-1] for row in rows]  # notes go to report.md
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "RecBole's models (mean ± sd over seeds) beside Paragon's fronts (min – max)\n" + "\n".join(lines)


def comparison_section(report: Mapping[str, Any]) -> List[str]:
    """The report.md section: how the models were run, then the table."""
    compare = report.get("compare")
    if not compare:
        return []
    header, rows = comparison_rows(report)
    settings = compare.get("settings") or {}
    protocol = compare.get("protocol") or report.get("protocol") or {}
    lines = ["## RecBole's models beside Paragon (compare stage)", "",
             f"Each model is RecBole's own implementation, trained on this run's data and split with "
             f"{', '.join(f'{k} {v}' for k, v in settings.items())}; seeds {compare.get('seeds')}; mean ± sd over "
             "the seeds that trained. Paragon's rows give the range of each front over the test preferences. "
             "n/a: the plugin cannot measure that objective for the model (the note says why).", ""]
    if protocol:
        full = (protocol.get("mode") or {}).get("test", "full") == "full"
        lines += [f"Test protocol: {protocol.get('test', protocol)}. " + (
            "RecBole's general models (e.g. Pop, BPR) rank without each user's training items, its sequential "
            "models (and Paragon) rank every item, as RecBole evaluates them." if full else
            "The negatives are items the user never interacted with, drawn with the run's seed: RecBole's sequential "
            "models rank the very same candidates as Paragon, its general models draw theirs through RecBole's "
            "general data pipeline."), ""]
    if compare.get("wall_seconds") is not None:
        lines += [f"Compare stage: {compare['wall_seconds']:.0f} s wall time ({compare.get('execution', '')}).", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + ["", f"![RecBole's models over Paragon's fronts]({PLOT_FILE})", ""]


# -- plot -------------------------------------------------------------------------------------------------------------
def _front(report: Mapping[str, Any], method: str, x: str, y: str) -> np.ndarray:
    points = [(e["metrics"][x], e["metrics"][y]) for e in (report.get("methods") or {}).get(method) or []
              if e.get("metrics", {}).get(x) is not None and e.get("metrics", {}).get(y) is not None]
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def _panel(ax, report: Mapping[str, Any], x: str, y: str, line: bool) -> None:
    for method in FRONT_METHODS:
        points = _front(report, method, x, y)
        if len(points):
            style = {"marker": "o", "markersize": 3, "linewidth": 1.0} if line else {"marker": "o", "markersize": 3,
                                                                                    "linestyle": "none"}
            ax.plot(points[:, 0], points[:, 1], label=f"Paragon {method}", alpha=0.8, **style)
    backbone = _front(report, "backbone", x, y)
    if len(backbone):
        ax.plot(backbone[:1, 0], backbone[:1, 1], marker="X", markersize=9, linestyle="none", color="black",
                label="Paragon backbone")
    for name, summary in report["compare"]["models"].items():
        mean, sd = summary["mean"], summary["sd"]
        if mean.get(x) is None or mean.get(y) is None:
            continue
        ax.errorbar(mean[x], mean[y], xerr=sd.get(x) or 0.0, yerr=sd.get(y) or 0.0, marker="*", markersize=11,
                    linestyle="none", capsize=3, zorder=3)
        ax.annotate(name, (mean[x], mean[y]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(True, alpha=0.3)


def comparison_plot(report: Mapping[str, Any], directory: str) -> Optional[str]:
    """``compare.png``: one panel per pair of objective metrics, RecBole's models as stars (error bars: sd over
    seeds) over Paragon's re-tuned and generated fronts (lines for two objectives, points for more, whose fronts
    are surfaces). None when the report has no comparison or fewer than two objective metrics."""
    compare = report.get("compare")
    keys = list((compare or {}).get("metrics") or [])
    if not compare or len(keys) < 2:
        return None
    pairs = list(itertools.combinations(keys, 2))
    fig = _figure(5.2 * len(pairs), 4.6)
    protocol = (compare.get("protocol") or report.get("protocol") or {}).get("mode", {}).get("test")
    if protocol:
        fig.suptitle(f"RecBole's models (mean ± sd over seeds) and Paragon's fronts; test protocol: {protocol}",
                     fontsize=9)
    for column, (x, y) in enumerate(pairs, start=1):
        ax = fig.add_subplot(1, len(pairs), column)
        _panel(ax, report, x, y, line=len(keys) == 2)
        if column == 1 and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, os.path.join(directory, PLOT_FILE))
