"""The barycentric soup: an adapter for any preference blended from the bank adapters around it.

``Σ λⱼ·θⱼ`` of the bank adapters at the corners of the Delaunay cell of the bank preferences that holds the
preference, ``λ`` its barycentric coordinates there (the K nearest bank adapters that surround it, averaged as the
preference sits between them); outside the bank's hull, the nearest bank adapter. No training: the bank is the
model. It is the cheap competitor that leads at five objectives on ml-100k (benchmarks/RESULTS.md), so it is a
generator kind the plugin stores, serves and exports like the others (``generator: barycentric_soup``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from scipy.spatial import Delaunay, QhullError
from torch import nn

from recbole_paragon.generators.state import STATE_FORMAT, PlainStateFile, plain
from recbole_paragon.preference import SAME_PREFERENCE, preference_distances


def barycentric_weights(points: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """``[Q, P]`` barycentric weights of ``queries [Q, d]`` in the Delaunay cell of ``points [P, d]`` holding each
    (rows of zeros outside their hull); a preference's coordinates are all its weights but the last."""
    weights = torch.zeros(len(queries), len(points), dtype=points.dtype)
    if points.shape[1] == 0:  # a vertex: the bank holds it or not
        weights[:, 0] = 1.0
        return weights
    if points.shape[1] == 1:  # an edge: the nearest bank preference on either side
        side = points[None, :, 0] - queries[:, None, 0]
        below = side.masked_fill(side > SAME_PREFERENCE, -float("inf")).max(1)
        above = side.masked_fill(side < -SAME_PREFERENCE, float("inf")).min(1)
        span = above.values - below.values
        inside = torch.isfinite(span)
        exact = below.values.abs() < SAME_PREFERENCE
        share = torch.where(exact | (span < SAME_PREFERENCE), torch.ones_like(span), above.values / span)
        rows = torch.nonzero(inside | exact).flatten()
        weights[rows, below.indices[rows]] += share[rows]
        rows = torch.nonzero(inside & ~exact).flatten()
        weights[rows, above.indices[rows]] += 1.0 - share[rows]
        return weights
    triangulation = delaunay(points)
    return weights if triangulation is None else cell_weights(triangulation, queries)


def delaunay(points: torch.Tensor) -> Optional[Delaunay]:
    """The Delaunay triangulation of ``points [P, d]`` (d >= 2), or None when they are too few or flat."""
    try:
        return Delaunay(points.numpy())
    except QhullError:
        return None


def cell_weights(triangulation: Delaunay, queries: torch.Tensor) -> torch.Tensor:
    """``[Q, P]`` barycentric weights of ``queries [Q, d]`` in the cells of ``triangulation`` (zeros outside)."""
    weights = torch.zeros(len(queries), len(triangulation.points), dtype=queries.dtype)
    cells = triangulation.find_simplex(queries.numpy(), tol=SAME_PREFERENCE)
    for row, cell in enumerate(cells.tolist()):
        if cell < 0:
            continue
        transform = triangulation.transform[cell]
        partial = transform[:-1] @ (queries[row].numpy() - transform[-1])
        coordinates = torch.tensor([*partial, 1.0 - partial.sum()], dtype=queries.dtype).clamp_min(0.0)
        weights[row, torch.from_numpy(triangulation.simplices[cell])] = coordinates / coordinates.sum()
    return weights


class BarycentricSoup(PlainStateFile, nn.Module):
    """``forward(preferences [B, K]) -> adapter vectors [B, P]`` blended from ``vectors [N, P]`` tuned at
    ``preferences [N, K]`` (distinct rows; the bank's Delaunay cells are found once, when it is built)."""

    kind = "barycentric_soup"
    training = "lookup"  # built from the bank's tuned adapters, no optimisation: GeneratorTrainer
    settings_prefixes = ()  # no settings of its own: the bank decides everything

    @classmethod
    def from_bank_rows(cls, rows: Dict[str, torch.Tensor]) -> "BarycentricSoup":
        """From bank tensors (``preferences``, ``steps``, ``seeds``, ``vectors``): the final adapter of each
        preference's first tuning seed, as the bank lookups use."""
        final = rows["steps"] == rows["steps"].max()
        first = final & (rows["seeds"] == rows["seeds"][final].min())
        return cls(rows["preferences"][first], rows["vectors"][first])

    def __init__(self, preferences: torch.Tensor, vectors: torch.Tensor) -> None:
        super().__init__()
        preferences, vectors = torch.as_tensor(preferences).float(), torch.as_tensor(vectors).float()
        if preferences.dim() != 2 or vectors.dim() != 2 or len(preferences) != len(vectors) or not len(vectors):
            raise ValueError(f"expected bank preferences [N, K] and their adapter vectors [N, P], got "
                             f"{tuple(preferences.shape)} and {tuple(vectors.shape)}")
        if len(torch.unique(preferences, dim=0)) != len(preferences):
            raise ValueError("the barycentric soup needs one adapter per bank preference (got repeated preferences)")
        self.register_buffer("preferences", preferences)
        self.register_buffer("vectors", vectors)
        self.num_parameters = vectors.shape[1]
        coordinates = preferences.double()[:, :-1]
        self._cells = delaunay(coordinates) if coordinates.shape[1] >= 2 else None  # None: K <= 2, or flat

    def weights(self, preferences: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` blend weights of the bank adapters for ``preferences [B, K]``."""
        bank, query = self.preferences.cpu().double()[:, :-1], preferences.cpu().double()[:, :-1]
        if bank.shape[1] < 2:  # one or two objectives: a vertex or an edge
            weights = barycentric_weights(bank, query)
        elif self._cells is not None:
            weights = cell_weights(self._cells, query)
        else:  # bank preferences too few or flat to have cells: every query is outside
            weights = torch.zeros(len(query), len(bank), dtype=query.dtype)
        outside = torch.nonzero(weights.sum(1) < 0.5).flatten()
        if len(outside):  # beyond the bank's hull: the nearest adapter
            nearest = preference_distances(preferences[outside].cpu().float(), self.preferences.cpu()).argmin(1)
            weights[outside] = 0.0
            weights[outside, nearest] = 1.0
        return weights.float()

    def forward(self, preferences: torch.Tensor) -> torch.Tensor:
        preferences = torch.as_tensor(preferences, dtype=torch.float32)
        if preferences.dim() == 1:
            preferences = preferences.unsqueeze(0)
        if preferences.dim() != 2 or preferences.shape[1] != self.preferences.shape[1]:
            raise ValueError(f"preferences must have shape [B, {self.preferences.shape[1]}], "
                             f"got {tuple(preferences.shape)}")
        return self.weights(preferences).to(self.vectors.device) @ self.vectors

    def state_dict_plain(self) -> Dict[str, Any]:
        return {"format": STATE_FORMAT, "kind": self.kind, "config": {}, "weights": plain(self.state_dict())}

    @classmethod
    def from_state(cls, state: Dict[str, Any]) -> "BarycentricSoup":
        if state.get("format") != STATE_FORMAT or state.get("kind") != cls.kind:
            raise ValueError(f"not a barycentric-soup state (format={state.get('format')!r})")
        return cls(state["weights"]["preferences"], state["weights"]["vectors"])
