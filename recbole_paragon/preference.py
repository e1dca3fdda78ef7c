"""Preference vectors over objectives: validation, normalisation and grids.

A preference ``w`` has one non-negative weight per objective. Weights that do not sum to 1 are divided by their
sum (``[2, 1]`` means ``[2/3, 1/3]``), so the scale of the loss never changes with the preference.
"""
from __future__ import annotations

import itertools
import math
import warnings
from typing import List, Optional, Sequence, Union

import torch

from recbole_paragon.echo import brief

PreferenceLike = Union[Sequence[float], torch.Tensor, str]


def parse_preference(value: PreferenceLike) -> List[float]:
    """Accept ``"0.3,0.7"``, ``[0.3, 0.7]`` or a tensor; return a list of floats (not yet validated)."""
    if isinstance(value, str):
        try:
            return [float(part) for part in value.replace("[", "").replace("]", "").split(",") if part.strip()]
        except ValueError:
            raise ValueError(f"preference must be comma-separated numbers like 0.3,0.7, got {brief(value)}") from None
    if isinstance(value, torch.Tensor):
        return [float(v) for v in value.reshape(-1)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]  # one number (e.g. --preference=0.5): the length check below explains what is missing
    if value is None or isinstance(value, (bool, dict)) or not hasattr(value, "__iter__"):
        raise ValueError(f"preference must be a list of numbers like [0.3, 0.7] or a string like 0.3,0.7, "
                         f"got {brief(value)}")
    return [_weight(v) for v in value]


def _weight(value) -> float:
    """One weight of a list: a number (not a bool, not a string), as a float; a too large integer is infinite."""
    if isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):
        raise ValueError(f"preference must be numbers like [0.3, 0.7], got the weight {brief(value)}")
    try:
        return float(value)
    except OverflowError:
        return math.inf
    except (TypeError, ValueError):
        raise ValueError(f"preference must be numbers like [0.3, 0.7], got the weight {brief(value)}") from None


def normalize_preference(value: PreferenceLike, objectives: Sequence[str]) -> torch.Tensor:
    """Validated preference for ``objectives``, scaled to sum to 1; a clear ``ValueError`` otherwise."""
    weights = parse_preference(value)
    names = ", ".join(objectives)
    if not weights:
        raise ValueError(f"preference is empty: give one weight per objective ({names}), e.g. "
                         f"{','.join(['0.5'] * len(objectives))}")
    if len(weights) != len(objectives):
        raise ValueError(f"preference needs {len(objectives)} weights, one per objective ({names}), got {len(weights)}")
    if any(not math.isfinite(w) for w in weights):
        raise ValueError(f"preference weights must be finite numbers, got {brief(weights)}")
    if any(w < 0 for w in weights):
        raise ValueError(f"preference weights must be non-negative, got {brief(weights)}")
    total = sum(weights)
    if total <= 0:
        raise ValueError(f"preference weights must not all be zero (objectives: {names})")
    if not math.isfinite(total):
        raise ValueError(f"preference weights are too large: their sum overflows; give smaller numbers in the same "
                         f"ratio (e.g. [0.5, 0.5] for equal weights), got {brief(weights)}")
    return torch.tensor([w / total for w in weights], dtype=torch.float32)


def as_preference(value: PreferenceLike, objectives: Sequence[str]) -> torch.Tensor:
    """The preference as a ``[K]`` float tensor that sums to 1: where a preference enters the plugin (command line,
    Python API) it is parsed, validated and normalised once; a tensor that already is one passes unchanged."""
    if (isinstance(value, torch.Tensor) and value.dtype == torch.float32 and value.dim() == 1
            and value.numel() == len(objectives) and bool(torch.isfinite(value).all())
            and bool((value >= 0).all()) and abs(float(value.sum()) - 1.0) < 1e-6):
        return value
    return normalize_preference(value, objectives)


def simplex_grid(num_objectives: int, step: float, offset: float = 0.0) -> torch.Tensor:
    """All preferences on the simplex whose weights are multiples of ``step`` ``[G, K]``.

    For two objectives this is ``w₁ ∈ {offset, offset+step, …}`` (``w₂ = 1 − w₁``); ``offset`` shifts the grid so
    it can avoid test points (e.g. step 0.1, offset 0.05 skips every ``i/10``). Offsets apply to two objectives only.
    """
    if num_objectives < 2:
        raise ValueError(f"a preference grid needs at least 2 objectives, got {num_objectives}")
    if not (0 < step <= 1) or not math.isfinite(step):
        raise ValueError(f"grid step must be in (0, 1], got {step}")
    if offset and num_objectives != 2:
        raise ValueError("a grid offset is only defined for two objectives")
    if num_objectives == 2:
        count = int(math.floor((1 - offset) / step + 1e-9))
        first = [offset + i * step for i in range(count + 1) if offset + i * step <= 1 + 1e-9]
        return torch.tensor([[round(a, 10), round(1 - a, 10)] for a in first], dtype=torch.float32)
    divisions = round(1 / step)
    if abs(divisions * step - 1) > 1e-9:
        raise ValueError(f"for {num_objectives} objectives the grid step must divide 1, got {step}")
    points = [c for c in itertools.product(range(divisions + 1), repeat=num_objectives - 1) if sum(c) <= divisions]
    return torch.tensor([[i / divisions for i in c] + [(divisions - sum(c)) / divisions] for c in points],
                        dtype=torch.float32)


#: Preferences closer than this (Euclidean) are the same preference.
SAME_PREFERENCE = 1e-6


def preference_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[len(a), len(b)]`` between preference rows, computed exactly: ``torch.cdist``'s
    matrix-product shortcut (used from 25 rows on) puts identical rows ~3e-4 apart, so equal preferences would not
    match."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def matches_any(preferences: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``[len(preferences)]`` bools: whether each preference equals one of ``targets``."""
    if len(targets) == 0 or len(preferences) == 0:
        return torch.zeros(len(preferences), dtype=torch.bool)
    return (preference_distances(preferences, targets) < SAME_PREFERENCE).any(1)



def simplex_vertices(num_objectives: int) -> torch.Tensor:
    """The ``K`` one-objective preferences ``e_i`` ``[K, K]``."""
    return torch.eye(num_objectives, dtype=torch.float32)


def to_simplex(cube: torch.Tensor) -> torch.Tensor:
    """Points of ``[0, 1]^(K−1)`` ``[N, K−1]`` -> the simplex ``[N, K]`` by sorted spacings (uniform in, uniform out)."""
    ordered = cube.sort(1).values
    edges = torch.cat([torch.zeros(len(cube), 1), ordered, torch.ones(len(cube), 1)], 1)
    return (edges[:, 1:] - edges[:, :-1]).float()


def low_discrepancy_simplex(num_objectives: int, count: int, sampler: str = "sobol", seed: int = 0) -> torch.Tensor:
    """``count`` seeded low-discrepancy preferences inside the simplex ``[count, K]``: scrambled Sobol or Halton
    points of ``[0, 1]^(K−1)`` mapped by sorted spacings. The first ``n`` of a longer draw are the draw of ``n``, so
    banks of growing budgets are nested."""
    from scipy.stats import qmc  # a heavy import, needed only for budgeted banks

    if count <= 0:
        return torch.zeros(0, num_objectives)
    engines = {"sobol": qmc.Sobol, "halton": qmc.Halton}
    if sampler not in engines:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(engines)}")
    engine = engines[sampler](d=num_objectives - 1, scramble=True, seed=int(seed))
    with warnings.catch_warnings():  # Sobol's balance wants powers of two; a prefix is still low-discrepancy
        warnings.simplefilter("ignore", UserWarning)
        cube = engine.random(count)
    return to_simplex(torch.as_tensor(cube, dtype=torch.float64))


def budgeted_preferences(num_objectives: int, budget: int, sampler: str = "sobol", seed: int = 0) -> torch.Tensor:
    """A bank of ``budget`` preferences: the ``K`` vertices, then ``budget − K`` low-discrepancy interior points."""
    if budget < num_objectives:
        raise ValueError(f"a budgeted bank holds the {num_objectives} vertices at least: bank_budget={budget} is too "
                         f"small for {num_objectives} objectives")
    return torch.cat([simplex_vertices(num_objectives),
                      low_discrepancy_simplex(num_objectives, budget - num_objectives, sampler, seed)])


def uniform_preferences(num_objectives: int, count: int, seed: int, avoid: Optional[torch.Tensor] = None
                        ) -> torch.Tensor:
    """``count`` preferences drawn uniformly inside the simplex (Dirichlet(1)), seeded, none equal to ``avoid``."""
    generator = torch.Generator().manual_seed(int(seed))
    drawn: List[torch.Tensor] = []
    while sum(len(d) for d in drawn) < count:
        batch = -torch.log(torch.rand(count, num_objectives, generator=generator).clamp_min(1e-12))
        batch = batch / batch.sum(1, keepdim=True)
        if avoid is not None and len(avoid):
            batch = batch[~matches_any(batch, avoid.float())]
        drawn.append(batch)
    return torch.cat(drawn)[:count].float()


def ray_preferences(num_objectives: int, rays: int, seed: int, points: int = 4) -> torch.Tensor:
    """``rays`` rays per objective ``i``: a direction ``d`` drawn uniformly on the face without ``i`` and the
    preferences ``t·e_i + (1 − t)·d`` for ``points`` values of ``t`` in [0.2, 0.8] (seeded): along a ray only
    ``w_i`` moves, so its metric's Spearman with ``w_i`` measures control of that objective alone."""
    generator = torch.Generator().manual_seed(int(seed) + 7919)  # another stream than the uniform sample
    weights = torch.linspace(0.2, 0.8, points)
    rows = []
    for index in range(num_objectives):
        for _ in range(rays):
            direction = -torch.log(torch.rand(num_objectives, generator=generator).clamp_min(1e-12))
            direction[index] = 0.0
            direction = direction / direction.sum()
            vertex = simplex_vertices(num_objectives)[index]
            rows.append(weights[:, None] * vertex + (1 - weights[:, None]) * direction)
    return torch.cat(rows) if rows else torch.zeros(0, num_objectives)
