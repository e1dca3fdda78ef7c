"""Controllability measures: correlations of weights with metrics, hypervolume with a shared reference, fidelity.

Pure functions over metric values; nothing here trains or loads a RecBole model.

Conventions
-----------
* A *method result* is a list of entries ``{"preference": [w_1, …, w_K], "metrics": {key: value}, "seconds": s}``,
  one per test preference; metric keys are RecBole's lower-case names (``ndcg@10``, ``alphandcg@10``,
  ``groupgap@10``). ``seconds`` is the wall time to adapt the model to that preference.
* ``directions`` say per metric whether larger (``"max"``) or smaller (``"min"``) is better.
* Correlations of constant input (or of fewer than two finite pairs) are undefined and returned as ``nan``
  (never a fake 0.0).
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

Tensor = torch.Tensor
ArrayLike = Union[Sequence[float], np.ndarray, Tensor]
MethodResults = Mapping[str, Sequence[Mapping[str, Any]]]
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


# ---------------------------------------------------------------- control along rays (K >= 3)


def ray_key(preference: np.ndarray, index: int, decimals: int = 6) -> Optional[Tuple[float, ...]]:
    """The ray of ``preference`` for objective ``index``: the other weights' ratio (``None`` at the vertex
    ``w_index = 1``, which lies on every ray)."""
    others = np.delete(preference, index)
    total = others.sum()
    return None if total <= 1e-9 else tuple(np.round(others / total, decimals))


def ray_controllability(
    methods_results: MethodResults,
    objective_metric: Mapping[str, Tuple[str, str]],
    objectives: Sequence[str],
    min_points: int = 3,
) -> Dict[str, Dict[str, float]]:
    """Mean Spearman of ``w_i`` with objective ``i``'s metric along the rays where the other weights keep their
    ratio (on a simplex the other weights move too, so a grid-wide correlation understates control).

    Rays with fewer than ``min_points`` preferences (vertex included) are skipped; for two objectives there is
    one ray and this equals the grid-wide Spearman. Signs as :func:`controllability` (positive = controllable).
    Returns ``{method: {objective: mean ray Spearman}}`` (``nan`` when no ray qualifies).
    """
    result: Dict[str, Dict[str, float]] = {}
    for method, entries in methods_results.items():
        per_objective: Dict[str, float] = {}
        for objective, (metric, direction) in objective_metric.items():
            index = list(objectives).index(objective)
            rays: Dict[Optional[Tuple[float, ...]], List[Tuple[float, float]]] = {}
            for entry in entries:
                value = entry.get("metrics", {}).get(metric)
                if value is not None:
                    weights = _as_array(entry["preference"], 1, "preference")
                    point = (float(weights[index]), float(value) if direction == "max" else -float(value))
                    rays.setdefault(ray_key(weights, index), []).append(point)
            vertex = rays.pop(None, [])
            values = [spearman(*zip(*(points + vertex))) for points in rays.values()
                      if len(points) + len(vertex) >= min_points]
            values = [v for v in values if np.isfinite(v)]
            per_objective[objective] = float(np.mean(values)) if values else float("nan")
        result[method] = per_objective
    return result
