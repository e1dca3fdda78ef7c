"""Controllability evaluation: correlations, Hypervolume, fidelity, MMR re-ranking, Pareto plot and the report.

Pure functions over metric values and score tensors; nothing here trains or loads a RecBole model.

Conventions
-----------
* A *method result* is a list of entries ``{"preference": [w_1, …, w_K], "metrics": {key: value}, "seconds": s}``,
  one per test preference; metric keys are RecBole's lower-case names (``ndcg@10``, ``alphandcg@10``,
  ``groupgap@10``). ``seconds`` is the wall time to adapt the model to that preference.
* ``directions`` say per metric whether larger (``"max"``) or smaller (``"min"``) is better.
* Correlations of constant input (or of fewer than two finite pairs) are undefined and returned as ``nan``
  (never a fake 0.0); ``report.json`` stores every non-finite number as ``null`` so it stays strict JSON.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from recbole_paragon.io import write_text

Tensor = torch.Tensor
ArrayLike = Union[Sequence[float], np.ndarray, Tensor]
MethodResults = Mapping[str, Sequence[Mapping[str, Any]]]

#: The metrics the markdown report tabulates per preference (whichever of them are present).
MAIN_METRICS = ("ndcg@10", "alphandcg@10", "groupgap@10")
#: Axes of the Pareto plot written by :func:`write_report`.
PARETO_AXES = ("ndcg@10", "alphandcg@10")
_DIRECTIONS = ("max", "min")


def _as_array(values: Any, ndim: Optional[int] = None, name: str = "values") -> np.ndarray:
    """Float64 numpy copy of a list / numpy array / tensor, optionally checked for its number of dimensions."""
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().numpy()
    array = np.array(values, dtype=np.float64)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    return array


# ---------------------------------------------------------------- correlations


def _correlation(x: ArrayLike, y: ArrayLike, kind: str) -> float:
    from scipy import stats

    a, b = _as_array(x, 1, "x"), _as_array(y, 1, "y")
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same length, got {a.shape[0]} and {b.shape[0]}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.pearsonr(a, b) if kind == "pearson" else stats.spearmanr(a, b)
    return float(result[0])


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson r of ``x`` and ``y`` over their finite pairs; ``nan`` for constant input or < 2 pairs."""
    return _correlation(x, y, "pearson")


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rank correlation of ``x`` and ``y`` over their finite pairs; ``nan`` for constant input or < 2 pairs."""
    return _correlation(x, y, "spearman")


def controllability(
    methods_results: MethodResults,
    objective_metric: Mapping[str, Tuple[str, str]],
    objectives: Optional[Sequence[str]] = None,
) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Correlation of each objective's weight with its metric over the test preferences, per method.

    ``objective_metric`` maps objective name → ``(metric key, direction)``, e.g.
    ``{"accuracy": ("ndcg@10", "max"), "diversity": ("alphandcg@10", "max"), "fairness": ("groupgap@10", "min")}``.
    The weight of objective ``o`` is ``preference[objectives.index(o)]``; ``objectives`` (the order of the weights)
    defaults to the order of ``objective_metric``. For a ``"min"`` metric (a gap) the weight is correlated with the
    *negated* metric, so for every objective a positive value means "more weight → better on that objective".
    Entries missing the metric are skipped. Returns ``{method: {objective: {"pearson": r, "spearman": rho}}}``.
    """
    order = list(objectives) if objectives is not None else list(objective_metric)
    result: Dict[str, Dict[str, Dict[str, float]]] = {}
    for method, entries in methods_results.items():
        per_objective: Dict[str, Dict[str, float]] = {}
        for objective, (metric, direction) in objective_metric.items():
            _check_direction(direction)
            if objective not in order:
                raise ValueError(f"objective {objective!r} is not among the preference's objectives {order}")
            index = order.index(objective)
            weights, values = [], []
            for entry in entries:
                value = entry.get("metrics", {}).get(metric)
                if value is None:
                    continue
                weights.append(float(_as_array(entry["preference"], 1, "preference")[index]))
                values.append(float(value) if direction == "max" else -float(value))
            per_objective[objective] = {"pearson": pearson(weights, values), "spearman": spearman(weights, values)}
        result[method] = per_objective
    return result


# ---------------------------------------------------------------- hypervolume


def _check_direction(direction: str) -> None:
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be 'max' or 'min', got {direction!r}")


def _signs(directions: Sequence[str]) -> np.ndarray:
    """+1 for "min" metrics, −1 for "max" metrics: multiplying turns every metric into one to minimise."""
    for direction in directions:
        _check_direction(direction)
    return np.array([-1.0 if d == "max" else 1.0 for d in directions])


def hypervolume(points: ArrayLike, directions: Sequence[str], reference: ArrayLike) -> float:
    """Hypervolume (pymoo ``HV``) of ``points [N, M]`` against ``reference [M]``, both in the metrics' own units.

    ``directions[m]`` is ``"max"`` or ``"min"``; max metrics are negated internally (pymoo minimises). Only points
    strictly better than the reference on every metric contribute; rows with non-finite values are ignored. Use one
    ``reference`` for all methods (see :func:`default_reference`) so their volumes are comparable.
    """
    from pymoo.indicators.hv import HV

    array = _as_array(points, name="points")
    if array.size == 0:
        return 0.0
    if array.ndim == 1:
        array = array[None, :]
    signs = _signs(directions)
    ref = _as_array(reference, 1, "reference")
    if array.shape[1] != len(signs) or ref.shape[0] != len(signs):
        raise ValueError(
            f"points have {array.shape[1]} metrics, directions {len(signs)} and reference {ref.shape[0]}: must agree"
        )
    minimised, ref_min = array * signs, ref * signs
    keep = np.isfinite(minimised).all(axis=1) & (minimised < ref_min).all(axis=1)
    if not keep.any():
        return 0.0
    return float(HV(ref_point=ref_min)(minimised[keep]))


def default_reference(
    all_points: Union[ArrayLike, Mapping[str, ArrayLike], Iterable[ArrayLike]],
    directions: Sequence[str],
    margin: float = 0.0,
) -> List[float]:
    """Shared reference point: the worst value of each metric over the points of *all* methods.

    ``all_points`` is one ``[N, M]`` array, a list of them, or a dict method → array. Pass the points of every
    compared method so they all share this reference (HV values of different references are not comparable).
    ``margin`` (a fraction of each metric's range over all points) pushes the reference further towards "worse",
    so the worst points also add volume; with 0 they lie on the reference and add none along that metric.
    """
    if isinstance(all_points, Mapping):
        parts = list(all_points.values())
    elif isinstance(all_points, (np.ndarray, Tensor)):
        parts = [all_points]
    else:
        parts = list(all_points)
        try:
            if np.array(parts, dtype=np.float64).ndim <= 2:
                parts = [parts]  # one array of rows, not a list of per-method arrays
        except (ValueError, TypeError):
            pass  # ragged: a list of per-method arrays
    signs = _signs(directions)
    arrays = [_as_array(p) for p in parts]
    arrays = [a[None, :] if a.ndim == 1 else a for a in arrays if a.size]
    if not arrays:
        raise ValueError("default_reference needs at least one point")
    stacked = np.concatenate(arrays, axis=0)
    if stacked.shape[1] != len(signs):
        raise ValueError(f"points have {stacked.shape[1]} metrics but {len(signs)} directions were given")
    minimised = stacked * signs
    minimised = np.where(np.isfinite(minimised), minimised, np.nan)
    worst, best = np.nanmax(minimised, axis=0), np.nanmin(minimised, axis=0)
    reference = (worst + margin * (worst - best)) * signs
    return [float(v) for v in reference]


def method_points(entries: Sequence[Mapping[str, Any]], metric_keys: Sequence[str]) -> np.ndarray:
    """``[N, M]`` array of the metrics ``metric_keys`` of one method's entries (entries lacking one are skipped)."""
    rows = [
        [float(entry["metrics"][key]) for key in metric_keys]
        for entry in entries
        if all(entry.get("metrics", {}).get(key) is not None for key in metric_keys)
    ]
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(metric_keys))


def hypervolumes(
    methods_results: MethodResults,
    metric_keys: Sequence[str],
    directions: Sequence[str],
    reference: Optional[ArrayLike] = None,
    margin: float = 0.0,
) -> Tuple[Dict[str, float], List[float]]:
    """HV of every method's ``metric_keys`` points against one shared reference (default: :func:`default_reference`
    over all methods). Returns ``({method: hv}, reference)``."""
    points = {name: method_points(entries, metric_keys) for name, entries in methods_results.items()}
    if reference is None:
        reference = default_reference(points, directions, margin)
    ref = [float(v) for v in _as_array(reference, 1, "reference")]
    return {name: hypervolume(p, directions, ref) for name, p in points.items()}, ref


# ---------------------------------------------------------------- fidelity


def fidelity(method_values: ArrayLike, retune_values: ArrayLike) -> float:
    """Mean over preferences of ``|method − mean over seeds of retune|``; ``method_values [P]``,
    ``retune_values [S, P]`` (adapters re-tuned at the same preferences with S seeds). Lower is better."""
    method = _as_array(method_values, 1, "method_values")
    retune = _as_array(retune_values, 2, "retune_values")
    if retune.shape[1] != method.shape[0]:
        raise ValueError(f"method has {method.shape[0]} preferences, retune_values {retune.shape[1]}")
    return float(np.mean(np.abs(method - retune.mean(axis=0))))


def noise_floor(retune_values: ArrayLike) -> float:
    """Leave-one-seed-out noise: mean over seeds ``s`` and preferences of ``|retune[s] − mean of the other seeds|``.

    The fidelity a method would score if it were just another tuning seed; needs ``S ≥ 2`` seeds.
    """
    retune = _as_array(retune_values, 2, "retune_values")
    seeds = retune.shape[0]
    if seeds < 2:
        raise ValueError(f"noise_floor needs retune values of at least 2 seeds (shape [S, P]), got S = {seeds}")
    others = (retune.sum(axis=0, keepdims=True) - retune) / (seeds - 1)
    return float(np.mean(np.abs(retune - others)))


# ---------------------------------------------------------------- MMR re-ranking baseline


def multi_hot_categories(item_category_ids: Tensor, n_categories: Optional[int] = None) -> Tensor:
    """Padded category ids ``[N, C]`` (0 = padding, the layout of :mod:`recbole_paragon.metrics`) → multi-hot
    float ``[N, n_categories]`` (column 0, the padding id, is always zero)."""
    ids = item_category_ids.long()
    if ids.dim() == 1:
        ids = ids[:, None]
    width = int(n_categories) if n_categories is not None else (int(ids.max()) + 1 if ids.numel() else 1)
    out = torch.zeros(ids.shape[0], width, dtype=torch.float, device=ids.device)
    out.scatter_(1, ids, 1.0)
    out[:, 0] = 0.0
    return out


@torch.no_grad()
def mmr_rerank(scores: Tensor, item_categories: Tensor, lam: float, k: int, candidates: int = 100) -> Tensor:
    """Maximal Marginal Relevance re-ranking of backbone ``scores [U, N]`` (item 0 = padding).

    Among each user's top-``candidates`` items (finite scores only; item 0 is never a candidate), greedily pick
    ``k`` items maximising ``lam·rel(i) − (1−lam)·max_{j picked} sim(i, j)``: ``rel`` = scores min-max normalised
    per user over the candidates, ``sim`` = (weighted) Jaccard of the rows of ``item_categories [N, C]`` (multi-hot;
    0 if both are empty). Ties go to the higher original score, so ``lam = 1`` reproduces the plain top-k exactly.

    Returns a score matrix for a top-k evaluator: the picked items score ``k, k−1, …, 1`` in pick order; every other
    finite score is shifted below them (``score − row max − 1 ≤ −1``), keeping its original order; item 0 and
    non-finite scores become / stay ``−inf``. Users with fewer than ``k`` finite candidates get fewer picks.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be [users, items], got shape {tuple(scores.shape)}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    n_users, n_items = scores.shape
    if item_categories.shape[0] != n_items:
        raise ValueError(f"item_categories has {item_categories.shape[0]} rows, scores {n_items} items")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out_dtype = scores.dtype if scores.is_floating_point() else torch.float
    work = scores.detach().double().clone()
    work[:, 0] = -math.inf
    work[torch.isnan(work)] = -math.inf
    n_cand = min(n_items, max(int(candidates), k))
    cand_scores, cand_items = torch.topk(work, n_cand, dim=1, sorted=True)  # descending: index = original rank
    valid = torch.isfinite(cand_scores)

    # relevance: min-max over each user's valid candidates
    low = torch.where(valid, cand_scores, torch.full_like(cand_scores, math.inf)).min(dim=1, keepdim=True).values
    high = torch.where(valid, cand_scores, torch.full_like(cand_scores, -math.inf)).max(dim=1, keepdim=True).values
    spread = high - low
    safe_spread = torch.where(spread > 0, spread, torch.ones_like(spread))
    rel = torch.where(spread > 0, (cand_scores - low) / safe_spread, torch.ones_like(cand_scores))
    rel = torch.where(valid, rel, torch.zeros_like(rel))

    cats = item_categories.to(device=scores.device, dtype=torch.double)[cand_items]  # [U, n_cand, C]
    max_sim = torch.zeros_like(rel)
    available = valid.clone()
    rows = torch.arange(n_users, device=scores.device)
    picks, picked_ok = [], []
    for _ in range(min(k, n_cand)):
        value = lam * rel - (1.0 - lam) * max_sim
        value = torch.where(available, value, torch.full_like(value, -math.inf))
        choice = value.argmax(dim=1)  # first maximum = best original rank among ties
        ok = available[rows, choice]
        picks.append(choice)
        picked_ok.append(ok)
        available[rows[ok], choice[ok]] = False
        chosen = cats[rows, choice]  # [U, C]
        inter = torch.minimum(cats, chosen[:, None, :]).sum(dim=-1)
        union = torch.maximum(cats, chosen[:, None, :]).sum(dim=-1)
        nonempty = union > 0
        safe_union = torch.where(nonempty, union, torch.ones_like(union))
        sim = torch.where(nonempty, inter / safe_union, torch.zeros_like(union))
        max_sim = torch.maximum(max_sim, sim)

    finite = torch.isfinite(work)
    row_max = torch.where(finite, work, torch.full_like(work, -math.inf)).max(dim=1, keepdim=True).values
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    out = torch.where(finite, work - row_max - 1.0, torch.full_like(work, -math.inf))
    for position, (choice, ok) in enumerate(zip(picks, picked_ok)):
        items = cand_items[rows, choice]
        out[rows[ok], items[ok]] = float(k - position)
    return out.to(out_dtype)


# ---------------------------------------------------------------- plot and report


def pareto_plot(
    methods: Mapping[str, Sequence[Tuple[float, float]]], x_label: str, y_label: str, path: str
) -> str:
    """One line with markers per method through its ``(x, y)`` points (in the given order, e.g. the preference
    sweep; non-finite points are dropped), saved as PNG at ``path``. Returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5))  # no pyplot: independent of the global backend, nothing left open
    FigureCanvasAgg(fig)
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
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120, format="png")
    return path


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: tensors / numpy → lists and floats, tuples → lists, non-finite floats → ``None``,
    dict keys → ``str``, RecBole ``Config`` → its ``final_config_dict``, anything else unknown → ``str``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        return to_jsonable(value.item() if value.dim() == 0 else value.tolist())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "final_config_dict"):
        return to_jsonable(dict(value.final_config_dict))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


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


def _markdown(report: Mapping[str, Any]) -> str:
    methods: Mapping[str, Sequence[Mapping[str, Any]]] = report.get("methods", {})
    header, rows = _summary_rows(report)
    parts = ["# Paragon controllability report", "", "## Summary", "", _table(header, rows), ""]
    all_keys: List[str] = []
    for entries in methods.values():
        for entry in entries:
            for key in entry.get("metrics", {}):
                if key not in all_keys:
                    all_keys.append(key)
    main = [m for m in MAIN_METRICS if m in all_keys] or all_keys
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
    if report.get("config"):
        parts += ["## Config", "", "```json", json.dumps(report["config"], indent=2, sort_keys=True), "```", ""]
    return "\n".join(parts)


def write_report(directory: str, report: Mapping[str, Any]) -> Dict[str, str]:
    """Write ``report.json`` (atomically), ``report.md`` and ``pareto.png`` into ``directory``.

    ``report`` keys: ``methods`` (name → list of ``{"preference", "metrics", "seconds"}``), ``pearson``
    (name → {objective: r}), ``spearman`` (same shape), ``hypervolume`` (name → HV), ``timing`` (name → seconds
    per adaptation, or a dict of timings), ``config``; optionally ``fidelity``. Values are converted to plain
    JSON types (:func:`to_jsonable`). The plot (NDCG@10 vs α-NDCG@10 per method) is skipped when no method has
    both ``ndcg@10`` and ``alphandcg@10``. Returns ``{"json": …, "markdown": …[, "plot": …]}``.
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
    x_key, y_key = PARETO_AXES
    fronts = {
        name: [(e["metrics"][x_key], e["metrics"][y_key]) for e in entries
               if e.get("metrics", {}).get(x_key) is not None and e.get("metrics", {}).get(y_key) is not None]
        for name, entries in clean.get("methods", {}).items()
    }
    fronts = {name: points for name, points in fronts.items() if points}
    if fronts:
        paths["plot"] = pareto_plot(fronts, "NDCG@10 (accuracy)", "α-NDCG@10 (diversity)",
                                    os.path.join(directory, "pareto.png"))
    return paths


__all__ = [
    "MAIN_METRICS",
    "controllability",
    "default_reference",
    "fidelity",
    "hypervolume",
    "hypervolumes",
    "method_points",
    "mmr_rerank",
    "multi_hot_categories",
    "noise_floor",
    "pareto_plot",
    "pearson",
    "spearman",
    "summary_table",
    "to_jsonable",
    "write_report",
]
