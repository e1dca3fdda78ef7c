"""The bank's behaviour between its preferences: neighbouring adapters interpolated in function space.

Neighbouring bank adapters behave alike (their metrics interpolate well between bank preferences) but lie far apart
in parameter space (300 Adam steps from one initialisation diverge), so averaging their parameters (neighbour_soup)
or a generator that lands near one of them misses the behaviour in between. :class:`FunctionalInterpolation` gives
the target of objective fine-tuning there: the weighted mean of the neighbours' *outputs* on users' states.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from recbole_paragon.generators.barycentric import barycentric_weights
from recbole_paragon.model.adapter import split_adapter_vectors


def neighbour_weights(bank: torch.Tensor, preferences: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Interpolation weights ``[G, B]`` of the bank preferences ``bank [B, K]`` for ``preferences [G, K]``, and
    ``[G]`` whether the row has any (False: outside the bank preferences it may draw on).

    A row draws only on bank preferences with the same exactly-zero weights: an objective with no weight at all is
    tuned unlike any small weight (the pure-diversity bank adapter keeps a third of the NDCG@10 of w1 = .05 on
    ml-100k), so neither is a vertex interpolated from the interior nor the interior from a vertex. Within those,
    the weights are the row's barycentric coordinates in the cell of the bank preferences that holds it: linear
    between the nearest bank preferences on either side on an edge of the simplex (two objectives), a Delaunay
    triangle or simplex on a face or the interior; a vertex only matches itself. Nothing is extrapolated beyond the
    bank: there the objectives alone decide."""
    weights = torch.zeros(len(preferences), len(bank))
    patterns, rows_of = torch.unique(preferences == 0, dim=0, return_inverse=True)
    for index, zeros in enumerate(patterns):
        rows = torch.nonzero(rows_of == index).flatten()
        candidates = torch.nonzero(((bank == 0) == zeros).all(1)).flatten()
        if len(candidates):
            free = torch.nonzero(~zeros).flatten()[:-1]  # the face's own coordinates (the last one is implied)
            cell = barycentric_weights(bank[candidates][:, free].double(), preferences[rows][:, free].double())
            weights[rows[:, None], candidates[None, :]] = cell.float()
    found = weights.sum(1) > 0.5
    return weights * found[:, None], found


def adapter_outputs(vectors: torch.Tensor, hidden: torch.Tensor, adapter_dim: int) -> torch.Tensor:
    """What each adapter adds to the states: ``[G, N, H]`` for vectors ``[G, P]`` and shared states ``[N, H]``."""
    w1, b1, w2, b2 = split_adapter_vectors(vectors, hidden.shape[-1], adapter_dim)
    inner = torch.relu(torch.einsum("nh,gdh->gnd", hidden, w1) + b1[:, None, :])
    return torch.einsum("gnd,ghd->gnh", inner, w2) + b2[:, None, :]


class FunctionalInterpolation:
    """Final bank adapters (seeds of one preference averaged in function space) as interpolation targets."""

    def __init__(self, preferences: torch.Tensor, vectors: torch.Tensor, owners: torch.Tensor,
                 adapter_dim: int) -> None:
        """``vectors [R, P]`` of ``R`` adapters, ``owners [R]`` the row of ``preferences [B, K]`` each belongs to."""
        if vectors.dim() != 2 or owners.shape != (len(vectors),) or int(owners.max()) >= len(preferences):
            raise ValueError(f"expected vectors [R, P] and one owner row of preferences [B, K] each, got "
                             f"{tuple(vectors.shape)}, {tuple(owners.shape)} and {tuple(preferences.shape)}")
        self.preferences, self.vectors, self.owners = preferences.float(), vectors.float(), owners
        self.counts = torch.bincount(owners, minlength=len(preferences)).float()
        self.adapter_dim = adapter_dim

    @classmethod
    def from_bank_rows(cls, bank_rows: Dict[str, torch.Tensor], adapter_dim: int) -> "FunctionalInterpolation":
        """From bank tensors (``preferences``, ``steps``, ``vectors``): the final-step adapters."""
        final = bank_rows["steps"] == bank_rows["steps"].max()
        preferences, owners = torch.unique(bank_rows["preferences"][final], dim=0, return_inverse=True)
        return cls(preferences, bank_rows["vectors"][final], owners, adapter_dim)

    def neighbours(self, preferences: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """:func:`neighbour_weights` of ``preferences`` over this bank's preferences: weights and whether found."""
        return neighbour_weights(self.preferences, preferences)

    def targets(self, preferences: torch.Tensor, hidden: torch.Tensor,
                neighbours: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Interpolated outputs ``[G, N, H]`` on ``hidden [N, H]`` and ``[G]`` whether each has bank neighbours
        (``neighbours``: :meth:`neighbours` of ``preferences`` when already computed)."""
        with torch.no_grad():
            outputs = adapter_outputs(self.vectors, hidden, self.adapter_dim)
            per_preference = torch.zeros(len(self.preferences), *outputs.shape[1:]).index_add_(0, self.owners, outputs)
            per_preference /= self.counts[:, None, None]
            weights, found = self.neighbours(preferences) if neighbours is None else neighbours
            return torch.einsum("gb,bnh->gnh", weights, per_preference), found

    def loss(self, preferences: torch.Tensor, vectors: torch.Tensor, hidden: torch.Tensor,
             neighbours: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        """Mean over the preferences with bank neighbours (:func:`neighbour_weights`) of the relative squared error
        between the outputs of ``vectors [G, P]`` and their targets on ``hidden [N, H]`` (0 where none has any)."""
        targets, found = self.targets(preferences, hidden, neighbours)
        if not found.any():
            return vectors.sum() * 0.0
        error = (adapter_outputs(vectors, hidden, self.adapter_dim) - targets).pow(2).sum(-1).mean(-1)
        scale = targets.pow(2).sum(-1).mean(-1).clamp_min(1e-8)
        return (error / scale)[found].mean()
