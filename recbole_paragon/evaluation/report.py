"""The evaluation report: every method's controllability, hypervolume, fidelity and timing; tables and plots.

:func:`summarise` turns per-method results into the report dict; :func:`write_report` writes ``report.json``,
``report.md`` and ``pareto.png``; :func:`summary_table` is the table the command line prints.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from recbole_paragon.artifacts import to_jsonable, write_text
from recbole_paragon.evaluation.comparison import comparison_plot, comparison_section
from recbole_paragon.evaluation.plots import pairs_plot, pareto_plot, ternary_plots
from recbole_paragon.evaluation.measures import (_as_array, controllability, fidelity, hypervolumes, noise_floor,
                                                 ray_controllability)


def summarise(results: Dict[str, Any], objectives) -> Dict[str, Any]:
    """Controllability, hypervolume (shared reference), fidelity against re-tuning and timing of every method.

    ``objectives``: the run's objectives in preference order (each has ``name``, ``metric()``, ``bigger_is_better``).
    """
    names = [o.name for o in objectives]
    metric_of = {o.name: (o.metric(), "max" if o.bigger_is_better else "min") for o in objectives}
    control = controllability(results, metric_of, names)
    keys = [metric_of[name][0] for name in names]
    directions = [metric_of[name][1] for name in names]
    volumes, reference = hypervolumes(results, keys, directions)
    report = {
        "methods": results,
        "objectives": names,
        "pearson": {m: {o: v["pearson"] for o, v in c.items()} for m, c in control.items()},
        "spearman": {m: {o: v["spearman"] for o, v in c.items()} for m, c in control.items()},
        "ray_spearman": ray_controllability(results, metric_of, names),
        "hypervolume": volumes,
        "hypervolume_reference": {"metrics": keys, "directions": directions, "point": reference},
        "timing": {m: sum(e["seconds"] for e in entries) / max(len(entries), 1) for m, entries in results.items()},
    }
    retune = results.get("retune")
    if retune and len(retune[0].get("seed_metrics", [])) >= 2:
        seed_values = {k: [[e["seed_metrics"][s][k] for e in retune] for s in range(len(retune[0]["seed_metrics"]))]
                       for k in keys}
        report["noise_floor"] = {k: noise_floor(v) for k, v in seed_values.items()}
        report["fidelity"] = {
            m: {k: fidelity([e["metrics"][k] for e in entries], seed_values[k]) for k in keys}
            for m, entries in results.items() if len(entries) == len(retune)
        }
    report["timing_ratios"] = timing_ratios(report["timing"])
    return report


def timing_ratios(timing: Dict[str, float]) -> Dict[str, float]:
    """How many times faster generating an adapter is than re-tuning and than retraining."""
    generate = timing.get("diffusion")
    if not generate:
        return {}
    return {f"{other}_over_diffusion": timing[other] / generate for other in ("retune", "retrain", "hypernet")
            if timing.get(other)}


def _metric_keys(report: Mapping[str, Any]) -> List[str]:
    keys: List[str] = []
    for entries in report.get("methods", {}).values():
        for entry in entries:
            keys += [key for key in entry.get("metrics", {}) if key not in keys]
    return keys


def objective_metrics(report: Mapping[str, Any]) -> List[str]:
    """The objectives' metric keys (at the run's ``topk``), from the report's hypervolume reference; every metric
    key present when the report has none."""
    reference = report.get("hypervolume_reference") or {}
    return list(reference.get("metrics") or _metric_keys(report))


def pareto_axes(report: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    """The two metrics the Pareto plot shows: the first two objective metrics (``None`` if there are fewer)."""
    keys = objective_metrics(report)
    return (keys[0], keys[1]) if len(keys) >= 2 else None


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, (int, float, np.floating, np.integer)):
        number = float(value)
        return "nan" if math.isnan(number) else f"{number:.{digits}f}"
    return str(value)


def _mean_seconds(report: Mapping[str, Any], method: str) -> Optional[float]:
    """Mean seconds to adapt for ``method``: ``timing[method]`` if it is a number (or a dict with
    ``seconds_per_adaptation`` / ``mean_seconds``), else the mean of the entries' ``seconds``."""
    timing = (report.get("timing") or {}).get(method)
    if isinstance(timing, (int, float)) and not isinstance(timing, bool):
        return float(timing)
    if isinstance(timing, Mapping):
        for key in ("seconds_per_adaptation", "mean_seconds", "seconds"):
            if isinstance(timing.get(key), (int, float)):
                return float(timing[key])
    seconds = [float(e["seconds"]) for e in report.get("methods", {}).get(method, []) if e.get("seconds") is not None]
    return float(np.mean(seconds)) if seconds else None


def _pearson_of(report: Mapping[str, Any], method: str) -> Mapping[str, Any]:
    """``report["pearson"][method]`` as ``{objective: r}`` (accepts ``{objective: {"pearson": r}}`` too)."""
    raw = (report.get("pearson") or {}).get(method) or {}
    if not isinstance(raw, Mapping):
        return {}
    return {k: (v.get("pearson") if isinstance(v, Mapping) else v) for k, v in raw.items()}


def _objective_names(report: Mapping[str, Any]) -> List[str]:
    names: List[str] = []
    for method in report.get("methods", {}):
        for objective in _pearson_of(report, method):
            if objective not in names:
                names.append(objective)
    return names


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _summary_rows(report: Mapping[str, Any]) -> Tuple[List[str], List[List[str]]]:
    methods = list(report.get("methods", {}))
    hv = report.get("hypervolume") or {}
    fid = report.get("fidelity") or {}
    objectives = _objective_names(report)
    retune_hv = hv.get("retune") if isinstance(hv.get("retune"), (int, float)) else None
    header = ["method", "HV"]
    if retune_hv is not None:
        header.append("HV / retune")
    header += [f"Pearson {o}" for o in objectives]
    fid_keys: List[str] = []
    if fid:
        for value in fid.values():
            for key in value if isinstance(value, Mapping) else ["fidelity"]:
                if key not in fid_keys:
                    fid_keys.append(key)
        header += [k if k.startswith("fidelity") else f"fidelity {k}" for k in fid_keys]
    header.append("ms / adaptation")
    rows = []
    for method in methods:
        value = hv.get(method)
        row = [method, _fmt(value, 5)]
        if retune_hv is not None:
            ratio = value / retune_hv if isinstance(value, (int, float)) and retune_hv else None
            row.append(_fmt(ratio, 3))
        pearsons = _pearson_of(report, method)
        row += [_fmt(pearsons.get(o), 3) for o in objectives]
        if fid_keys:
            entry = fid.get(method)
            for key in fid_keys:
                if isinstance(entry, Mapping):
                    row.append(_fmt(entry.get(key)))
                else:
                    row.append(_fmt(entry) if key == "fidelity" else "—")
        seconds = _mean_seconds(report, method)
        row.append(_fmt(None if seconds is None else 1000.0 * seconds, 2))
        rows.append(row)
    return header, rows


def summary_table(report: Mapping[str, Any]) -> str:
    """Plain-text table the CLI prints: method, HV, HV ratio vs ``"retune"`` (if present), Pearson per objective,
    fidelity (if ``report["fidelity"]`` exists: method → number or dict metric → number), ms per adaptation."""
    header, rows = _summary_rows(to_jsonable(dict(report)))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines = [line.rstrip() for line in lines]
    return "\n".join(lines)


def _preference_label(preference: Any) -> str:
    values = _as_array(preference).reshape(-1)
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"


def _control_section(report: Mapping[str, Any]) -> List[str]:
    """Spearman over the grid and along the rays, per method and objective."""
    grid, rays = report.get("spearman") or {}, report.get("ray_spearman") or {}
    objectives = list(report.get("objectives") or _objective_names(report))
    if not grid or not objectives:
        return []
    rows = [[method] + [_fmt((grid.get(method) or {}).get(o), 3) for o in objectives]
            + [_fmt((rays.get(method) or {}).get(o), 3) for o in objectives] for method in grid]
    header = ["method"] + [f"Spearman {o}" for o in objectives] + [f"ray Spearman {o}" for o in objectives]
    return ["## Control (Spearman of each weight with its metric)", "", _table(header, rows), ""]


def _levers_section(report: Mapping[str, Any]) -> List[str]:
    """Each objective's lever (its vertex against the reference, in bootstrap standard errors) and the warnings."""
    levers = report.get("levers") or {}
    if not levers.get("objectives"):
        return []
    rows = [[name, lever["metric"], f"{lever['reference']} {_fmt(lever['reference_value'])}",
             _fmt(lever["vertex_value"]), _fmt(lever["lever_se"], 1), "yes" if lever["has_lever"] else "**no**"]
            for name, lever in levers["objectives"].items()]
    parts = ["## Levers (each objective's vertex against the backbone, selection users)", "",
             _table(["objective", "metric", "reference", "vertex", "standard errors", "lever"], rows), ""]
    return parts + [f"- **warning**: {warning}" for warning in levers.get("warnings", [])] + [""]


def _markdown(report: Mapping[str, Any]) -> str:
    methods: Mapping[str, Sequence[Mapping[str, Any]]] = report.get("methods", {})
    header, rows = _summary_rows(report)
    parts = ["# Paragon controllability report", "", "## Summary", "", _table(header, rows), ""]
    all_keys = _metric_keys(report)
    main = [m for m in objective_metrics(report) if m in all_keys] or all_keys
    if main:
        parts += ["## Metrics per preference", ""]
        labels: List[str] = []
        for entries in methods.values():
            for entry in entries:
                label = _preference_label(entry.get("preference", []))
                if label not in labels:
                    labels.append(label)
        names = list(methods)
        for metric in main:
            lookup = {
                (name, _preference_label(e.get("preference", []))): e.get("metrics", {}).get(metric)
                for name, entries in methods.items()
                for e in entries
            }
            table_rows = [[label] + [_fmt(lookup.get((n, label))) for n in names] for label in labels]
            parts += [f"### {metric}", "", _table(["preference"] + names, table_rows), ""]
    parts += _control_section(report)
    parts += _levers_section(report)
    parts += comparison_section(report)
    if report.get("protocol"):
        parts += ["## Protocol", "", "```json", json.dumps(report["protocol"], sort_keys=True), "```", ""]
    if report.get("user_groups"):
        parts += ["## User groups", "", "```json", json.dumps(report["user_groups"], sort_keys=True), "```", ""]
    if report.get("config"):
        parts += ["## Config", "", "```json", json.dumps(report["config"], indent=2, sort_keys=True), "```", ""]
    return "\n".join(parts)


def write_report(directory: str, report: Mapping[str, Any]) -> Dict[str, str]:
    """Write ``report.json`` (atomically), ``report.md``, ``pareto.png`` (and ``compare.png`` with a comparison)
    into ``directory``.

    ``report`` keys: ``methods`` (name → list of ``{"preference", "metrics", "seconds"}``), ``pearson``
    (name → {objective: r}), ``spearman`` (same shape), ``hypervolume`` (name → HV), ``timing`` (name → seconds
    per adaptation, or a dict of timings), ``config``; optionally ``fidelity``. Values are converted to plain
    JSON types (:func:`to_jsonable`). The plot shows the first two objective metrics (:func:`pareto_axes`) per
    method and is skipped when there are fewer than two. Returns ``{"json": …, "markdown": …[, "plot": …]}``.
    """
    os.makedirs(directory, exist_ok=True)
    clean = to_jsonable(dict(report))
    paths: Dict[str, str] = {}
    json_path = os.path.join(directory, "report.json")
    write_text(json_path, json.dumps(clean, indent=2, allow_nan=False) + "\n")
    paths["json"] = json_path
    md_path = os.path.join(directory, "report.md")
    write_text(md_path, _markdown(clean))
    paths["markdown"] = md_path
    axes = pareto_axes(clean)
    if axes is None:
        return paths
    x_key, y_key = axes
    fronts = {
        name: [(e["metrics"][x_key], e["metrics"][y_key]) for e in entries
               if e.get("metrics", {}).get(x_key) is not None and e.get("metrics", {}).get(y_key) is not None]
        for name, entries in clean.get("methods", {}).items()
    }
    fronts = {name: points for name, points in fronts.items() if points}
    if fronts:
        paths["plot"] = pareto_plot(fronts, x_key, y_key, os.path.join(directory, "pareto.png"))
    if len(objective_metrics(clean)) == 3 and clean.get("objectives"):
        paths.update(ternary_plots(clean, directory))
    compared = comparison_plot(clean, directory)
    if compared:
        paths["compare plot"] = compared
    objective_keys = (clean.get("hypervolume_reference") or {}).get("metrics") or []
    if len(objective_keys) >= 3:  # one panel per pair of the objectives' metrics
        paths["pairs"] = pairs_plot(clean, objective_keys, os.path.join(directory, "pairs.png"))
    return paths
