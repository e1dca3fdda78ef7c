"""Soft ranks of a row's candidate items, what the list-level objectives differentiate through, and
:class:`ListObjective`, the base of those that read them (exposure, novelty, embedding diversity, calibration).

``above[b, i, j] = σ((s_j − s_i)/τ)`` is the soft indicator that candidate j ranks above i; the soft rank of i is
``r_i = 1 + Σ_{j≠i} above[i, j]`` (the diagonal is σ(0) = ½ exactly, so ``r = ½ + Σ_j above``); a soft top-K
indicator ``σ((K + ½ − r_i)/τ)`` keeps the first K; the position discount is ``1/log2(1 + r_i)``. As τ → 0 they
are the hard rank, top-K membership and DCG discount of the sorted candidates.
"""
from __future__ import annotations

from typing import Tuple

import torch

from recbole_paragon.objectives.base import CachedBatch, Objective, Scores
from recbole_paragon.settings import setting

Tensor = torch.Tensor


def above(scores: Tensor, tau: float) -> Tensor:
    """``[B, M, M]``: soft indicator that candidate j (last axis) ranks above candidate i."""
    return torch.sigmoid((scores[:, None, :] - scores[:, :, None]) / tau)


def soft_rank(scores: Tensor, tau: float) -> Tensor:
    """Soft rank ``[B, M]`` of each candidate (1 = first)."""
    return 0.5 + above(scores, tau).sum(-1)


def in_top_k(rank: Tensor, k: int, tau: float) -> Tensor:
    """Soft indicator ``[B, M]`` that a candidate of soft ``rank`` is among the first ``k``."""
    return torch.sigmoid((k + 0.5 - rank) / tau)


def discount(rank: Tensor) -> Tensor:
    """DCG's position discount ``1/log2(1 + r)``."""
    return 1.0 / torch.log2(1.0 + rank)


class ListObjective(Objective):
    """An objective on each row's soft top-K (K: the first ``topk``) among its ``<name>_candidates`` best backbone
    items, soft at ``<name>_temperature``: its cost does not grow with the catalogue."""

    def __init__(self, config, dataset, model) -> None:
        super().__init__(config, dataset, model)
        self.tau = float(setting(config, f"{self.name}_temperature"))
        self.candidates = int(setting(config, f"{self.name}_candidates"))
        if self.candidates < self.topk:
            raise ValueError(f"{self.name}_candidates={self.candidates} must be >= the first topk ({self.topk})")

    def ranked(self, batch: CachedBatch, scores: Scores) -> Tuple[Tensor, Tensor]:
        """The row's candidates ``[B, M]`` and their soft ranks."""
        return (batch.candidates[:, :self.candidates],
                soft_rank(scores.of_candidates(batch.candidates, self.candidates), self.tau))

    def top_k(self, batch: CachedBatch, scores: Scores) -> Tuple[Tensor, Tensor]:
        """The row's candidates ``[B, M]`` and their soft top-K indicators."""
        candidates, rank = self.ranked(batch, scores)
        return candidates, in_top_k(rank, self.topk, self.tau)
